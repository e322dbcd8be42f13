"""The runtime every service is built on: Kafka (FastStream), MongoDB, outbox, timers, HTTP.

A service module creates a :class:`Service`, registers its event handlers
(:meth:`Service.consume`), timer handlers (:meth:`Service.on_timer`), indexes and HTTP
routes, then exposes ``service.http_app()`` (FastAPI: ``/healthz``, ``/readyz``, ``/metrics``
and its own API) and ``service.stream_app`` (the FastStream app, for AsyncAPI docs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from faststream.specification import AsyncAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, PyMongoError

from shared.batching import is_storage_unavailable
from shared.clock import Clock, SystemClock
from shared.consumer import INBOX, QUARANTINE, EventConsumer, EventHandler, KeyOf, apply_batch
from shared.kafka_fetch_wait import emulate_fetch_wait
from shared.leases import LEASES
from shared.mongo import CommandCounter, Document, ensure_indexes, make_client
from shared.outbox import OUTBOX, OUTBOX_INDEXES, OutboxRelay, pending_events
from shared.settings import ServiceSettings, kafka_client_id
from shared.telemetry import configure_logging, setup_telemetry
from shared.timers import TIMER_INDEXES, TIMERS, TimerHandler, TimerKeyOf, TimerWheel
from shared.topics import EXTERNAL_TYPE_TOPICS, Topic
from shared.unit_of_work import Lookup, UnitOfWork

T = TypeVar("T")
log = structlog.get_logger(__name__)

RouterFactory = Callable[["Service"], APIRouter]
C = TypeVar("C")
Hook = Callable[["Service"], Awaitable[None]]

PLATFORM_INDEXES: dict[str, list[IndexModel]] = {
    OUTBOX: OUTBOX_INDEXES,
    TIMERS: TIMER_INDEXES,
    QUARANTINE: [IndexModel([("at", -1)], name="recent")],
    INBOX: [IndexModel([("ids", 1)], name="by_event")],
    LEASES: [],
}
PLATFORM_RETIRED: dict[str, list[str]] = {TIMERS: ["by_subject"]}
"""Indexes of earlier versions no query reads (dropped at start: they cost every write)."""


class SafeJSONResponse(JSONResponse):
    """JSON that survives echoing any input: a string holding a lone surrogate (valid in a
    JSON request, not encodable as UTF-8) is sent escaped instead of failing with a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def tolerant_parser(
    records: tuple[ConsumerRecord[bytes, bytes], ...],
    original: Callable[[tuple[ConsumerRecord[bytes, bytes], ...]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream's batch parser, made to accept header values that are not UTF-8.

    It decodes every header value as UTF-8 before any handler runs, so one bad header would
    fail on every redelivery and hold the partition. The handler still gets the records as
    they came (``raw_message``) and quarantines the bad one with its reason.
    """
    try:
        return await original(records)
    except UnicodeDecodeError:
        readable = tuple(
            dataclasses.replace(
                r, headers=[(k, v.decode("utf-8", "replace").encode()) for k, v in r.headers or ()]
            )
            for r in records
        )
        message = await original(readable)
        message.raw_message = records
        return message


async def raw_body(msg: StreamMessage[Any]) -> Any:
    """Hand the records over undecoded: the consumer decodes and judges them.

    FastStream's default decoder parses a JSON body by its content type before any handler
    runs; a body that is not JSON would then fail on every redelivery and hold the partition.
    """
    return msg.body


class Service:
    """One Jiandu service process (or one replica of it)."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        clock: Clock | None = None,
        tracer_provider: TracerProvider | None = None,
        title: str | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.name = settings.service_name
        self.source = f"/jiandu/{self.name}"
        self.instance = settings.instance_id or f"{socket.gethostname()}:{os.getpid()}"
        self.title = title or f"Jiandu {self.name}"
        configure_logging(self.name, settings.log_level, settings.log_json)
        self.tracer_provider = tracer_provider or setup_telemetry(
            self.name, otlp_endpoint=settings.otlp_endpoint, instance_id=self.instance
        )
        self.registry = CollectorRegistry()
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=kafka_client_id(self.instance),
            security=settings.kafka_security(),  # SASL/SCRAM as the service's own user
            middlewares=(
                KafkaTelemetryMiddleware(tracer_provider=self.tracer_provider),
                KafkaPrometheusMiddleware(registry=self.registry, app_name=self.name),
            ),
            logger=None,
        )
        self._stream_app = FastStream(
            self.broker,
            specification=AsyncAPI(self.broker, title=self.title, version="0.1.0"),
        )
        self._indexes: dict[str, list[IndexModel]] = {
            k: list(v) for k, v in PLATFORM_INDEXES.items()
        }
        self._retired: dict[str, list[str]] = {k: list(v) for k, v in PLATFORM_RETIRED.items()}
        self._routers: list[RouterFactory] = []
        self._components: dict[type, object] = {}
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self.consumers: dict[str, EventConsumer] = {}
        self._by_topic: dict[str, EventConsumer] = {}
        self._descriptions: list[str] = []
        self._subscribed = False
        self._timer_handlers: dict[str, tuple[TimerHandler[UnitOfWork], dict[str, TimerKeyOf]]] = {}
        self._client: AsyncMongoClient[Document] | None = None
        self.relay: OutboxRelay | None = None
        self.timers: TimerWheel[UnitOfWork] | None = None
        self.started = False
        self.mongo_commands = CommandCounter(self.registry)
        self._outbox_gauge = Gauge(
            "jiandu_outbox_pending", "Outbox events not yet published", registry=self.registry
        )
        self._batch_records = Histogram(
            "jiandu_batch_records",
            "Records per polled Kafka batch",
            ["consumer"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=self.registry,
        )
        self._batch_seconds = Histogram(
            "jiandu_batch_seconds",
            "Time to apply one polled batch (its transaction, bisections and retries)",
            ["consumer"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self._timers_gauge = Gauge(
            "jiandu_timers_due", "Timers due and not yet fired", registry=self.registry
        )

    # -- registration (before start) -------------------------------------------------

    def topic(self, topic: Topic) -> str:
        return topic.qualified(self.settings.topic_prefix)

    def consume(
        self,
        topic: Topic,
        handlers: Mapping[str, EventHandler],
        *,
        name: str | None = None,
        prefetch: Mapping[str | Lookup, KeyOf] | None = None,
    ) -> EventConsumer:
        """Handle ``topic``'s events; each CloudEvent type goes to its handler, others are
        skipped (on an ingest topic, a type it does not carry at all is quarantined).

        ``prefetch`` names, per collection, the id a handler will read for an event: the
        whole batch's documents are then loaded with one query per collection.

        Every topic a service consumes is read by ONE Kafka subscriber (one group member per
        replica): a batch may mix topics and is still applied in one transaction, and a
        service never rebalances against itself while its consumers join one by one.
        """
        if self._subscribed:
            raise RuntimeError("consume() after the service's subscriber was wired")
        consumer_name = name or f"{self.name}.{topic.name}"
        known = frozenset(t for t, on in EXTERNAL_TYPE_TOPICS.items() if on == topic) or None
        consumer = EventConsumer(
            self,
            consumer_name,
            self.topic(topic),
            handlers,
            known,
            prefetch,
            tracer=self.tracer_provider.get_tracer("jiandu.consumer"),
        )
        if consumer.topic in self._by_topic:
            raise ValueError(f"{consumer.topic} is consumed twice")
        self.consumers[consumer_name] = consumer
        self._by_topic[consumer.topic] = consumer
        self._descriptions.append(f"{topic.name}: {topic.description}")
        return consumer

    def _subscribe_consumers(self) -> None:
        """Wire the one subscriber over every topic given to :meth:`consume` (once)."""
        if self._subscribed:
            return
        self._subscribed = True
        if not self._by_topic:
            return
        by_topic = self._by_topic

        async def apply(records: tuple[ConsumerRecord[bytes, bytes], ...]) -> None:
            await apply_batch(self, [by_topic[r.topic].decode(i, r) for i, r in enumerate(records)])

        self.subscribe_batches(
            list(by_topic),
            apply,
            consumer_name=f"{self.name}.events",
            title=f"{self.name}:events",
            description="; ".join(self._descriptions),
        )

    @property
    def stream_app(self) -> FastStream:
        """The FastStream app (AsyncAPI documents), its subscriber wired."""
        self._subscribe_consumers()
        return self._stream_app

    def subscribe_batches(
        self,
        topics: Sequence[str],
        apply: Callable[[tuple[ConsumerRecord[bytes, bytes], ...]], Awaitable[Any]],
        *,
        consumer_name: str,
        title: str,
        description: str,
    ) -> None:
        """One Kafka subscriber handing ``apply`` each polled batch of ``topics``."""
        backoff = self.settings.retry_backoff_s * 4

        sizes = self._batch_records.labels(consumer_name)
        durations = self._batch_seconds.labels(consumer_name)

        async def on_batch(msg: KafkaMessage) -> None:
            records: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message  # type: ignore[assignment]
            sizes.observe(len(records))
            try:
                with durations.time():
                    await apply(records)
            except Exception as exc:
                if is_storage_unavailable(exc):
                    # Not the records' fault: back off, then FastStream seeks every
                    # partition of the batch back and they come again.
                    log.warning("batch given back", consumer=consumer_name, error=repr(exc))
                    await asyncio.sleep(backoff)
                raise

        on_batch.__name__ = "on_" + re.sub(r"\W", "_", consumer_name)
        self.broker.subscriber(
            *topics, **self.subscriber_options(consumer_name), title=title, description=description
        )(on_batch)

    def subscriber_options(self, consumer_name: str) -> dict[str, Any]:
        """Keyword arguments every Kafka subscriber of this service takes.

        Records come in batches (what Kafka has ready, up to ``batch_max_records``), applied
        in one transaction. Offsets are committed once per batch, only after the handler
        returned (``NACK_ON_ERROR``: an error seeks every partition of the batch back), so a
        crash re-delivers rather than loses; handlers are idempotent.
        """
        return {
            "batch": True,
            "max_records": self.settings.batch_max_records,
            "batch_timeout_ms": self.settings.batch_max_wait_ms,
            "group_id": self.settings.group_id,
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": self.settings.session_timeout_ms,
            "heartbeat_interval_ms": max(1000, self.settings.session_timeout_ms // 5),
            "group_instance_id": self._group_instance_id(consumer_name),
            "parser": tolerant_parser,
            "decoder": raw_body,
        }

    def _group_instance_id(self, consumer_name: str) -> str | None:
        """Static group membership, one id per consumer of this replica.

        Besides sparing a rebalance on every restart, it is what lets a SIGKILLed replica
        come back on noida-db, which never expires a dead dynamic member (the group would
        wait for it forever); on Apache Kafka the id expires after the session timeout.
        """
        if not self.settings.kafka_static_membership:
            return None
        return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{self.instance}.{consumer_name}")[:249]

    def publishes(self, *topics: Topic) -> None:
        """Declare the topics this service writes to (they appear in its AsyncAPI document).

        Events still leave through the outbox relay; this only documents the channel.
        """
        for topic in topics:
            self.broker.publisher(
                self.topic(topic), title=f"{self.name}->{topic.name}", description=topic.description
            )

    def on_timer(
        self,
        kind: str,
        handler: TimerHandler[UnitOfWork],
        *,
        prefetch: Mapping[str, TimerKeyOf] | None = None,
    ) -> None:
        """Fire ``handler`` for due timers of ``kind``; ``prefetch`` as for :meth:`consume`."""
        self._timer_handlers[kind] = (handler, dict(prefetch or {}))

    def indexes(
        self,
        plan: Mapping[str, Sequence[IndexModel]],
        *,
        retired: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Indexes to build at start; ``retired`` names earlier versions built, dropped."""
        for collection, models in plan.items():
            self._indexes.setdefault(collection, []).extend(models)
        for collection, names in (retired or {}).items():
            self._retired.setdefault(collection, []).extend(names)

    def routes(self, routes: APIRouter | RouterFactory) -> None:
        """Serve ``routes``: a module-level router, or a factory given this service."""
        if isinstance(routes, APIRouter):
            router = routes
            self._routers.append(lambda _: router)
        else:
            self._routers.append(routes)

    def provide(self, *components: object) -> None:
        """Make objects (a workflow, a catalogue) reachable from module-level routes by type
        (``shared.api.component``): routes stay free of construction and of globals."""
        for obj in components:
            self._components[type(obj)] = obj

    def component(self, kind: type[C]) -> C:
        obj = self._components.get(kind)
        if not isinstance(obj, kind):
            raise LookupError(f"{self.name} was given no {kind.__name__} (Service.provide)")
        return obj

    def on_start(self, hook: Hook) -> None:
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        self._on_stop.append(hook)

    # -- resources --------------------------------------------------------------------

    @property
    def client(self) -> AsyncMongoClient[Document]:
        if self._client is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._client

    @property
    def db(self) -> AsyncDatabase[Document]:
        return self.client[self.settings.database]

    async def run_in_uow(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction; its events leave through the outbox after commit.

        A transaction that lost a write conflict (two replicas, or a timer and a consumer
        touching one document) carries the TransientTransactionError label: the whole
        ``work`` runs again in a fresh transaction, a bounded number of times.
        """
        attempts = self.settings.transaction_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._run_once_in_uow(work)
            except PyMongoError as exc:
                if attempt == attempts or not exc.has_error_label("TransientTransactionError"):
                    raise
                log.info("transaction conflict, retrying", attempt=attempt, error=repr(exc))
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    async def _run_once_in_uow(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        uow: UnitOfWork
        async with self.client.start_session() as session:
            async with await session.start_transaction():
                uow = UnitOfWork(
                    self.db, session, self.clock, self.source, self.settings.topic_prefix
                )
                result = await work(uow)
                await uow.flush()
        if uow.emitted and self.relay is not None:
            self.relay.wake()
        if uow.scheduled and self.timers is not None:
            self.timers.scheduled(uow.scheduled)
        return result

    async def publish_raw(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        await self.broker.publish(value, topic=topic, key=key, headers=headers)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if s.kafka_fetch_wait_ms:
            emulate_fetch_wait(s.kafka_fetch_wait_ms)
        self._client = make_client(s.mongo_uri, f"jiandu-{self.name}", [self.mongo_commands])
        await ensure_indexes(self.db, self._indexes, self._retired)
        self.relay = OutboxRelay(
            self.db,
            self.publish_raw,
            owner=self.instance,
            lease_s=s.lease_s,
            poll_s=s.outbox_poll_s,
            batch=s.outbox_batch,
        )
        self.timers = TimerWheel[UnitOfWork](
            self.db,
            self.clock,
            self.run_in_uow,
            owner=self.instance,
            lease_s=s.lease_s,
            max_sleep_s=s.timer_max_sleep_s,
            batch=s.timer_batch,
            max_failures=s.handler_attempts,
            tracer=self.tracer_provider.get_tracer("jiandu.timers"),
        )
        await self.timers.migrate()
        for kind, handler in self._timer_handlers.items():
            self.timers.register(kind, *handler)
        for hook in self._on_start:
            await hook(self)
        self._subscribe_consumers()
        await self.broker.start()
        self.relay.start()
        if s.timers_run:
            self.timers.start()
        self.started = True
        log.info("service started", instance=self.instance, consumers=list(self.consumers))

    async def stop(self) -> None:
        """Stop consuming first, then timers; flush the outbox; close MongoDB last."""
        if not self.started:
            return
        self.started = False
        for subscriber in self.broker.subscribers:
            try:
                await subscriber.stop()
            except Exception as exc:  # already disconnected: nothing to hand back
                log.warning("subscriber stop failed", error=repr(exc))
        if self.timers is not None:
            await self.timers.stop()
        for hook in self._on_stop:
            await hook(self)
        if self.relay is not None:
            await self.relay.stop()
            try:
                await asyncio.wait_for(self._flush_outbox(), 5)
            except Exception as exc:
                log.warning("outbox not flushed at stop", error=repr(exc))
        try:
            await self.broker.stop()
        except Exception as exc:
            log.warning("broker stop failed", error=repr(exc))
        if self._client is not None:
            await self._client.close()
            self._client = None
        log.info("service stopped", instance=self.instance)

    async def _flush_outbox(self) -> None:
        if self.relay is None:
            return
        try:
            while await self.relay.drain_once():
                pass
        finally:
            await self.relay.release()  # drain_once took the lease again

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    # -- health ---------------------------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        t0 = time.perf_counter()
        try:
            try:
                await asyncio.wait_for(self.client.admin.command("ping"), 3)
            except AutoReconnect:  # one pooled connection the server closed: ask again once
                await asyncio.wait_for(self.client.admin.command("ping"), 3)
            checks["mongodb"] = {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 1)}
        except Exception as exc:
            checks["mongodb"] = {"ok": False, "error": repr(exc)}
        t0 = time.perf_counter()
        try:
            ok = await self.broker.ping(timeout=3)
            checks["kafka"] = {"ok": bool(ok), "ms": round((time.perf_counter() - t0) * 1000, 1)}
        except Exception as exc:
            checks["kafka"] = {"ok": False, "error": repr(exc)}
        checks["ready"] = self.started and all(
            c["ok"] for c in checks.values() if isinstance(c, dict)
        )
        return checks

    async def metrics_text(self) -> bytes:
        if self.started:
            try:
                self._outbox_gauge.set(await pending_events(self.db))
                if self.timers is not None:
                    self._timers_gauge.set(await self.timers.due_count())
            except Exception as exc:
                log.warning("metrics refresh failed", error=repr(exc))
        return generate_latest(self.registry)

    def http_app(self, *, manage_lifecycle: bool = True) -> FastAPI:
        """The FastAPI app; with ``manage_lifecycle`` its lifespan starts and stops the service."""

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            if manage_lifecycle:
                await self.start()
            try:
                yield
            finally:
                if manage_lifecycle:
                    await self.stop()

        app = FastAPI(
            title=self.title,
            version="0.1.0",
            lifespan=lifespan,
            default_response_class=SafeJSONResponse,
        )
        app.state.service = self

        @app.exception_handler(RequestValidationError)
        async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
            """422 with pydantic's reasons; they echo the input, which may not be encodable."""
            return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)

        @app.get("/healthz", tags=["operations"])
        async def healthz() -> dict[str, Any]:
            """Liveness: the process answers."""
            return {"status": "ok", "service": self.name, "instance": self.instance}

        @app.get("/readyz", tags=["operations"])
        async def readyz() -> JSONResponse:
            """Readiness: MongoDB and Kafka answer and the consumers are running."""
            checks = await self.readiness()
            return JSONResponse(checks, status_code=200 if checks["ready"] else 503)

        @app.get("/metrics", tags=["operations"])
        async def metrics() -> Response:
            return Response(await self.metrics_text(), media_type=CONTENT_TYPE_LATEST)

        for factory in self._routers:
            app.include_router(factory(self))
        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.tracer_provider)
        return app
