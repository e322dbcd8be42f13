"""Test helpers shared by every service's tests: Kafka taps, publishing, waiting on state."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from devtools.embedded import EmbeddedServers
from shared.city import CITY_BUREAU
from shared.envelope import Envelope
from shared.identity import IdentitySettings, Principal, Role, issue_token
from shared.service import Service
from shared.settings import ServiceSettings

T = TypeVar("T")


class KafkaTap:
    """Reads a topic from the beginning (no consumer group) and keeps every record."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[ConsumerRecord[bytes, bytes]] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> KafkaTap:
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic)
        for _ in range(50):
            if partitions:
                break
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self.topic)
        assert partitions, f"topic {self.topic} does not exist"
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._pump())
        return self

    async def _pump(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)
            if batch:
                self._changed.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self._consumer.stop()

    def events(self) -> list[Envelope]:
        out = []
        for r in self.records:
            try:
                out.append(Envelope.from_kafka(r.value or b"", list(r.headers or ()), r.key))
            except Exception:
                continue
        return out

    async def wait_for(
        self,
        predicate: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
        timeout: float = 20.0,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Wait until ``predicate(records)`` holds; each new batch re-checks it."""
        deadline = time.monotonic() + timeout
        while not predicate(self.records):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out on {self.topic}: {len(self.records)} records")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
        return self.records

    async def wait_for_events(
        self, predicate: Callable[[list[Envelope]], bool], timeout: float = 20.0
    ) -> list[Envelope]:
        await self.wait_for(lambda _: predicate(self.events()), timeout)
        return self.events()


class Publisher:
    """Publishes envelopes (binary mode) or raw records, like an external system would."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap)

    async def start(self) -> Publisher:
        await self._producer.start()
        return self

    async def stop(self) -> None:
        await self._producer.stop()

    async def event(self, topic: str, event: Envelope) -> None:
        key, value, headers = event.to_kafka()
        await self._producer.send_and_wait(
            topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )

    async def raw(
        self, topic: str, value: bytes, key: bytes | None = None, headers: list[Any] | None = None
    ) -> None:
        await self._producer.send_and_wait(topic, value, key=key, headers=headers or [])


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 20.0, interval: float = 0.05
) -> T:
    """Poll ``check`` until it returns a truthy value (for state that emits no event)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


def thing_records(n: int, topic: str = "t") -> list[ConsumerRecord[bytes, bytes]]:
    """``n`` Kafka records of a minimal CloudEvent (type ``test.thing``, ids ``e-0``…), one
    key, in offset order: a batch for the consumer runtime without a broker."""
    headers = [
        ("ce_type", b"test.thing"),
        ("ce_source", b"/t"),
        ("ce_specversion", b"1.0"),
        ("ce_district", b"310101"),
        ("ce_partitionkey", b"k"),
    ]
    return [
        ConsumerRecord(
            topic, 0, i, 0, 0, b"k", b"{}", None, 1, 2, [("ce_id", f"e-{i}".encode()), *headers]
        )
        for i in range(n)
    ]


def key_on_same_partition(key: str, partitions: int, stem: str = "marker") -> str:
    """A different key that Kafka's default partitioner puts on ``key``'s partition.

    A marker published after some events is a barrier only for events on its own partition.
    """
    from aiokafka.partitioner import murmur2

    def partition(k: str) -> int:
        return (murmur2(k.encode()) & 0x7FFFFFFF) % partitions

    return next(f"{stem}-{i}" for i in range(10_000) if partition(f"{stem}-{i}") == partition(key))


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def settings_on(
    cls: type[SettingsT], servers: EmbeddedServers, prefix: str, **overrides: Any
) -> SettingsT:
    """A service's settings on the suite's servers, in the namespace of ``prefix``."""
    base: dict[str, Any] = {
        "kafka_bootstrap": servers.kafka_bootstrap,
        "mongo_uri": servers.mongo_uri,
        "topic_prefix": prefix,
        "log_json": False,
        "retry_backoff_s": 0.01,
        "outbox_poll_s": 0.1,
        "timers_run": False,  # tests fire timers with tick(), not by waiting
        "session_timeout_ms": 6000,  # noida-db minimum: faster rebalances
        "kafka_fetch_wait_ms": 50,  # noida-db does not hold empty fetches
    }
    probe = cls(**{**base, **overrides})
    base["mongo_db"] = f"{prefix.rstrip('.')}_{probe.service_name}"
    base.update(overrides)
    return cls(**base)


# ------------------------------------------------------------------ tokens


def token_for(
    settings: IdentitySettings,
    role: Role = Role.CITY_SUPERVISOR,
    sub: str = "tester",
    district: str | None = None,
    unit: str | None = None,
    ttl_s: int = 3600,
) -> str:
    """A bearer token as the gateway would issue it, for the service under test."""
    if role is Role.UNIT_OFFICER and unit and not district:
        district = unit.split("-", 1)[0]
    principal = Principal(sub=sub, role=role, district=district, unit=unit)
    return issue_token(settings, principal, datetime.now(UTC), ttl_s=ttl_s)


def bearer(
    settings: IdentitySettings, role: Role = Role.CITY_SUPERVISOR, **claims: Any
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(settings, role, **claims)}"}


UNIT_ID = re.compile(r"^\d{6}-[a-z0-9-]+$")


def principal_for_body(body: Any) -> tuple[Role, dict[str, Any]]:
    """Who would send this body: the unit it names acts (its officer, its district's bureau
    or the city bureau), a reviewer id scores; anything else is the city supervisor."""
    if not isinstance(body, dict):
        return Role.CITY_SUPERVISOR, {}
    by = body.get("by") if isinstance(body.get("by"), str) else None
    unit = body.get("unit")
    if not isinstance(unit, str) and by and UNIT_ID.match(by):
        unit, by = by, None
    sub = by or "tester"
    if isinstance(body.get("reviewer_id"), str):
        return Role.REVIEWER, {"sub": body["reviewer_id"]}
    if isinstance(unit, str) and UNIT_ID.match(unit):
        if unit == CITY_BUREAU:
            return Role.CITY_SUPERVISOR, {"sub": sub}
        if unit.endswith("-sfj"):
            return Role.DISTRICT_SUPERVISOR, {"sub": sub, "district": unit[:6]}
        return Role.UNIT_OFFICER, {"sub": sub, "unit": unit}
    return Role.CITY_SUPERVISOR, {"sub": sub}


class ActingAs(httpx.Auth):
    """httpx auth for the services' existing tests: each request carries the token of the
    one who would send it (see :func:`principal_for_body`); GETs are the city supervisor's
    unless ``role``/``claims`` say otherwise."""

    def __init__(self, settings: IdentitySettings, role: Role | None = None, **claims: Any) -> None:
        self.settings = settings
        self.role = role
        self.claims = claims

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.role is not None:
            role, claims = self.role, self.claims
        else:
            try:
                body = json.loads(request.content or b"null")
            except ValueError:
                body = None
            if request.method == "POST":
                role, claims = principal_for_body(body)
            else:  # a PUT's ``unit`` is data (a routing target); its ``by`` is the city's
                by = body.get("by") if isinstance(body, dict) else None
                role, claims = (
                    Role.CITY_SUPERVISOR,
                    {"sub": by if isinstance(by, str) else "tester"},
                )
        request.headers["Authorization"] = f"Bearer {token_for(self.settings, role, **claims)}"
        yield request


@asynccontextmanager
async def api_client(svc: Service, *, anonymous: bool = False) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a running service's API, in process (the test runs the service).

    Each request carries the token of the one who would send it (:class:`ActingAs`);
    ``anonymous``: no token, the test sets its own headers.
    """
    transport = httpx.ASGITransport(app=svc.http_app(manage_lifecycle=False))
    auth = None if anonymous else ActingAs(svc.settings)
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://{svc.name}", auth=auth
    ) as client:
        yield client


async def applied_ids(db: Any) -> set[str]:
    """Every ``<consumer>:<event id>`` a service's inbox holds (one document per batch)."""
    return {i async for doc in db["inbox"].find({}, {"ids": 1}) for i in doc["ids"]}
