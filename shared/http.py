"""The HTTP face every service shares: FastAPI with ``/healthz``, ``/readyz``, ``/metrics``,
JSON that survives any input, and the service's own routers.

``Service.http_app`` builds the app with :func:`http_app`; ``Service.readiness`` and
``Service.metrics_text`` answer with :func:`readiness` and :class:`RuntimeGauges`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from shared.mongo import Document
from shared.outbox import pending_events

log = structlog.get_logger(__name__)


class SafeJSONResponse(JSONResponse):
    """JSON that survives echoing any input: a string holding a lone surrogate (valid in a
    JSON request, not encodable as UTF-8) is sent escaped instead of failing with a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class HttpHost(Protocol):
    """What the HTTP app needs of the service it serves (``shared.service.Service``)."""

    name: str
    instance: str
    title: str
    tracer_provider: TracerProvider

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def readiness(self) -> dict[str, Any]: ...

    async def metrics_text(self) -> bytes: ...


async def readiness(
    client: Callable[[], AsyncMongoClient[Document]], broker: KafkaBroker, started: bool
) -> dict[str, Any]:
    """MongoDB and Kafka answer (each check with its time) and the service is started.

    ``client`` is asked inside the check: a service not started yet has none.
    """
    checks: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        try:
            await asyncio.wait_for(client().admin.command("ping"), 3)
        except AutoReconnect:  # one pooled connection the server closed: ask again once
            await asyncio.wait_for(client().admin.command("ping"), 3)
        checks["mongodb"] = {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 1)}
    except Exception as exc:
        checks["mongodb"] = {"ok": False, "error": repr(exc)}
    t0 = time.perf_counter()
    try:
        ok = await broker.ping(timeout=3)
        checks["kafka"] = {"ok": bool(ok), "ms": round((time.perf_counter() - t0) * 1000, 1)}
    except Exception as exc:
        checks["kafka"] = {"ok": False, "error": repr(exc)}
    checks["ready"] = started and all(c["ok"] for c in checks.values() if isinstance(c, dict))
    return checks


class RuntimeGauges:
    """What ``/metrics`` reads from MongoDB when scraped: the outbox backlog, due timers."""

    def __init__(self, registry: CollectorRegistry, refresh_timeout_s: float = 2.0) -> None:
        self.registry = registry
        self.refresh_timeout_s = refresh_timeout_s
        self.outbox = Gauge(
            "jiandu_outbox_pending", "Outbox events not yet published", registry=registry
        )
        self.timers = Gauge("jiandu_timers_due", "Timers due and not yet fired", registry=registry)

    async def text(
        self,
        db: AsyncDatabase[Document] | None,
        due_timers: Callable[[], Awaitable[int]] | None,
    ) -> bytes:
        """The registry in Prometheus' text format, the gauges refreshed first when ``db``
        (a started service) is given; a failed or slow refresh keeps the last values.

        The refresh gets ``refresh_timeout_s``: a scrape must answer while the database is
        busy (the bench's scrape after a burst on 100,000-document collections waited past
        its 10 s and failed the run), and the counters it carries are all in memory.
        """
        if db is not None:
            try:
                async with asyncio.timeout(self.refresh_timeout_s):
                    self.outbox.set(await pending_events(db))
                    if due_timers is not None:
                        self.timers.set(await due_timers())
            except Exception as exc:
                log.warning("metrics refresh failed", error=repr(exc))
        return generate_latest(self.registry)


def http_app(
    host: HttpHost, routers: Sequence[APIRouter], *, manage_lifecycle: bool = True
) -> FastAPI:
    """The FastAPI app; with ``manage_lifecycle`` its lifespan starts and stops ``host``."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await host.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await host.stop()

    app = FastAPI(
        title=host.title,
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.service = host

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        """422 with pydantic's reasons; they echo the input, which may not be encodable."""
        return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"status": "ok", "service": host.name, "instance": host.instance}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Readiness: MongoDB and Kafka answer and the consumers are running."""
        checks = await host.readiness()
        return JSONResponse(checks, status_code=200 if checks["ready"] else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return Response(await host.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=host.tracer_provider)
    return app
