"""The five services on the suite's servers, each serving HTTP on a free port, for fuzzing.

They run in a background thread with their own event loop (uvicorn, with the service's
lifespan), so schemathesis and hypothesis can call them like any client would, over TCP.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from pymongo import MongoClient

from devtools.embedded import EmbeddedServers, free_port
from services.casereview.main import build as build_casereview
from services.casereview.settings import CasereviewSettings
from services.gateway.auth import hash_secret
from services.gateway.domain.access import Role
from services.gateway.domain.credentials import new_api_key
from services.gateway.main import build as build_gateway
from services.gateway.settings import GatewaySettings
from services.hotline.main import build as build_hotline
from services.hotline.settings import HotlineSettings
from services.inspection.main import build as build_inspection
from services.inspection.settings import InspectionSettings
from services.notify.main import build as build_notify
from services.notify.settings import NotifySettings
from services.penalty.main import build as build_penalty
from services.penalty.settings import PenaltySettings
from shared.kafka_admin import create_topics
from shared.service import Service
from shared.settings import ServiceSettings
from tests.gateway.support import bearer
from tests.helpers import settings_on

EXAMPLES = int(os.environ.get("JIANDU_FUZZ_EXAMPLES", "6"))
"""Examples per API operation (and bad records per batch ×4); `make fuzz` raises it."""

BUILDS: dict[str, tuple[Callable[..., Service], type[ServiceSettings]]] = {
    "gateway": (build_gateway, GatewaySettings),
    "hotline": (build_hotline, HotlineSettings),
    "casereview": (build_casereview, CasereviewSettings),
    "penalty": (build_penalty, PenaltySettings),
    "notify": (build_notify, NotifySettings),
    "inspection": (build_inspection, InspectionSettings),
}


@dataclass
class FuzzPlatform:
    servers: EmbeddedServers
    prefix: str
    settings: dict[str, ServiceSettings] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    _servers: list[uvicorn.Server] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: list[BaseException] = field(default_factory=list)
    _mongo: MongoClient[dict[str, Any]] | None = None

    def db(self, service: str) -> Any:
        """The service's database, through one client the tests share (opened on first use)."""
        if self._mongo is None:
            self._mongo = MongoClient(self.servers.mongo_uri, tz_aware=True)
        return self._mongo[self.settings[service].mongo_db]

    def start(self) -> None:
        asyncio.run(create_topics(self.servers.kafka_bootstrap, self.prefix))
        for name, (_, cls) in BUILDS.items():
            overrides: dict[str, Any] = {"http_port": free_port()}
            if name == "gateway":
                overrides |= {"rate_per_s": 100_000.0, "rate_burst": 100_000}
            self.settings[name] = settings_on(cls, self.servers, self.prefix, **overrides)
            self.urls[name] = f"http://127.0.0.1:{self.settings[name].http_port}"
        self._thread = threading.Thread(target=self._run, name="fuzz-platform", daemon=True)
        self._thread.start()
        if not self._ready.wait(120) or self._error:
            raise RuntimeError(f"fuzz platform did not start: {self._error}")
        key_id, key = new_api_key()
        now = datetime.now(UTC)
        self.db("gateway")["api_keys"].insert_one(
            {"_id": key_id, "name": "fuzz", "hash": hash_secret(key), "created_at": now}
        )
        gateway = self.settings["gateway"]
        assert isinstance(gateway, GatewaySettings)
        self.headers = {"X-Api-Key": key, **bearer(gateway, Role.CITY_SUPERVISOR)}

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread
            self._error.append(exc)
            self._ready.set()

    async def _serve(self) -> None:
        for name, (build, _) in BUILDS.items():
            settings = self.settings[name]
            app = build(settings).http_app(manage_lifecycle=True)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=settings.http_port, log_level="warning"
            )
            self._servers.append(uvicorn.Server(config))
        tasks = [asyncio.create_task(s.serve()) for s in self._servers]
        while not all(s.started for s in self._servers):
            if any(t.done() for t in tasks):
                raise RuntimeError("a service's HTTP server stopped while starting")
            await asyncio.sleep(0.05)
        self._ready.set()
        await asyncio.gather(*tasks)

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(60)
        if self._mongo is not None:
            self._mongo.close()


@pytest.fixture(scope="package")
def fuzz_platform(servers: EmbeddedServers) -> Iterator[FuzzPlatform]:
    platform = FuzzPlatform(servers, prefix=f"fz{uuid.uuid4().hex[:8]}.")
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()
