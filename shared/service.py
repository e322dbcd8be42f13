"""The runtime every service is built on: Kafka (FastStream), MongoDB, outbox, timers, HTTP.

A service module creates a :class:`Service`, registers its event handlers
(:meth:`Service.consume`), timer handlers (:meth:`Service.on_timer`), indexes and HTTP
routes, then exposes ``service.http_app()`` (FastAPI: ``/healthz``, ``/readyz``, ``/metrics``
and its own API) and ``service.stream_app`` (the FastStream app, for AsyncAPI docs).

``Service`` is the composition root; the parts it puts together live beside it:
``shared.subscription`` (Kafka subscribers, their options and batch metrics),
``shared.consumer`` (applying a batch), ``shared.unit_of_work`` (one transaction),
``shared.retrying`` (reruns of a conflicting transaction), ``shared.outbox`` and
``shared.timers``, and ``shared.http`` (the FastAPI app, readiness and metrics).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared.clock import Clock, SystemClock
from shared.consumer import INBOX, QUARANTINE, EventConsumer, EventHandler, KeyOf, apply_batch
from shared.http import RuntimeGauges
from shared.http import http_app as build_http_app
from shared.http import readiness as check_readiness
from shared.kafka_fetch_wait import emulate_fetch_wait
from shared.leases import LEASES
from shared.mongo import CommandCounter, Document, ensure_indexes, make_client
from shared.outbox import OUTBOX, OUTBOX_INDEXES, OutboxRelay
from shared.retrying import TRANSACTION_CONFLICTS, transient_transaction
from shared.settings import ServiceSettings, kafka_client_id
from shared.subscription import BatchApply, Records, Subscriptions
from shared.telemetry import configure_logging, setup_telemetry
from shared.timers import (
    TIMER_INDEXES,
    TIMERS,
    DueTimerFailed,
    TimerHandler,
    TimerKeyOf,
    TimerWheel,
)
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
            compression_type=settings.kafka_compression_type(),
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
        self._background_writer = asyncio.Lock()
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self.consumers: dict[str, EventConsumer] = {}
        self._by_topic: dict[str, EventConsumer] = {}
        self._descriptions: list[str] = []
        self._subscribed = False
        self._timer_handlers: dict[
            str, tuple[TimerHandler[UnitOfWork], dict[str | Lookup, TimerKeyOf]]
        ] = {}
        self._client: AsyncMongoClient[Document] | None = None
        self.relay: OutboxRelay | None = None
        self._producer: AIOKafkaProducer | None = None
        self._outbox_published = Counter(
            "jiandu_outbox_published", "Outbox events published to Kafka", registry=self.registry
        )
        self.timers: TimerWheel[UnitOfWork] | None = None
        self.started = False
        self.mongo_commands = CommandCounter(self.registry)
        self._gauges = RuntimeGauges(self.registry, self.settings.metrics_refresh_timeout_s)
        self.subscriptions = Subscriptions(self.broker, settings, self.instance, self.registry)

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

        async def apply(records: Records) -> None:
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
        apply: BatchApply,
        *,
        consumer_name: str,
        title: str,
        description: str,
    ) -> None:
        """One Kafka subscriber handing ``apply`` each polled batch of ``topics``."""
        self.subscriptions.subscribe_batches(
            topics, apply, consumer_name=consumer_name, title=title, description=description
        )

    def subscriber_options(self, consumer_name: str) -> dict[str, Any]:
        """Keyword arguments every Kafka subscriber of this service takes
        (``shared.subscription.Subscriptions.options``)."""
        return self.subscriptions.options(consumer_name)

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
        prefetch: Mapping[str | Lookup, TimerKeyOf] | None = None,
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

    async def run_in_uow(
        self,
        work: Callable[[UnitOfWork], Awaitable[T]],
        *,
        serial: bool = False,
        attempts: int | None = None,
    ) -> T:
        """Run ``work`` in one transaction; its events leave through the outbox after commit.

        A transaction that lost a write conflict (two replicas, or a timer and a consumer
        touching one document) carries the TransientTransactionError label: the whole
        ``work`` runs again in a fresh transaction, a bounded number of times
        (``shared.retrying.TRANSACTION_CONFLICTS``); then the last error propagates.

        ``serial``: the process's background writers (consumer batches, timers, workers)
        take turns, one transaction at a time. They touch the same aggregates; run side by
        side, a timer firing on a complaint made the consumer's whole batch of 200 records
        conflict and run again. API commands are not serial: they stay quick. ``attempts``:
        tries before the conflict propagates (default ``JIANDU_TRANSACTION_ATTEMPTS``).
        """
        retry = TRANSACTION_CONFLICTS.times(attempts or self.settings.transaction_attempts)
        if serial:
            return await retry(self._run_in_turn, work)
        return await retry(self._run_once_in_uow, work)

    async def _run_in_turn(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async with self._background_writer:
            return await self._run_once_in_uow(work)

    async def _run_once_in_uow(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """One transaction; the timers it schedules already due fire in it
        (``JIANDU_TIMERS_FIRE_AT_COMMIT``), unless one of them fails: then it runs again
        without, and the wheel fires them."""
        s = self.settings
        if self.timers is None or not (s.timers_run and s.timers_fire_at_commit):
            return await self._transaction(work, fire_due=False)
        try:
            return await self._transaction(work, fire_due=True)
        except DueTimerFailed as exc:
            log.warning("due timer left to the wheel", error=repr(exc.__cause__))
            return await self._transaction(work, fire_due=False)

    async def _transaction(self, work: Callable[[UnitOfWork], Awaitable[T]], fire_due: bool) -> T:
        uow: UnitOfWork
        async with self.client.start_session() as session:
            async with await session.start_transaction():
                uow = UnitOfWork(
                    self.db,
                    session,
                    self.clock,
                    self.source,
                    self.settings.topic_prefix,
                    self.settings.write_together_max,
                    instance=self.instance,
                )
                result = await work(uow)
                fired = await self.timers.fire_due_now(uow) if fire_due and self.timers else 0
                try:
                    await uow.flush()
                except PyMongoError as exc:
                    if fired and not transient_transaction(exc):  # maybe the timers' writes
                        raise DueTimerFailed(f"writing due timers' work: {exc!r}") from exc
                    raise
        if uow.emitted and self.relay is not None:
            self.relay.wake(uow.outbox)
        if uow.scheduled and self.timers is not None:
            self.timers.scheduled(uow.scheduled)
        return result

    async def publish_raw(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        await self.broker.publish(value, topic=topic, key=key, headers=headers)

    async def publish_outbox(self, entries: list[Document]) -> None:
        """The relay's publisher: the events in order, then wait for Kafka to take them all.

        A plain aiokafka producer, not FastStream's publish path: that path wrapped every
        record in middleware and a task (most of a busy service's CPU went there). The trace
        context the event was emitted in travels as its ``traceparent`` header, so the
        consumer's span still continues the producer's trace.
        """
        producer = self._producer
        if producer is None:
            raise RuntimeError(f"{self.name} is not started")
        sent = []
        for entry in entries:
            headers = {**entry["headers"], **(entry.get("trace") or {})}
            sent.append(
                await producer.send(
                    entry["topic"],
                    entry["value"],
                    key=entry["key"],
                    headers=[(k, str(v).encode()) for k, v in headers.items()],
                )
            )
        await asyncio.gather(*sent)
        self._outbox_published.inc(len(entries))

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        if s.kafka_fetch_wait_ms:
            emulate_fetch_wait(s.kafka_fetch_wait_ms, s.kafka_fetch_wait_min_ms)
        self._client = make_client(
            s.mongo_uri,
            f"jiandu-{self.name}",
            [self.mongo_commands],
            max_idle_ms=s.mongo_max_idle_ms,
        )
        await ensure_indexes(self.db, self._indexes, self._retired)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            client_id=f"{kafka_client_id(self.instance)}-outbox",
            acks="all",  # marked sent only once every in-sync replica has them
            compression_type=s.kafka_compression_type(),
            **s.kafka_client_options(),
        )
        await self._producer.start()
        self.relay = OutboxRelay(
            self.db,
            self.publish_outbox,
            owner=self.instance,
            lease_s=s.lease_s,
            poll_s=s.outbox_poll_s,
            batch=s.outbox_batch,
            sweep_grace_s=s.outbox_sweep_grace_s,
            mark_every_s=s.outbox_mark_every_s,
        )
        self.timers = TimerWheel[UnitOfWork](
            self.db,
            self.clock,
            functools.partial(self.run_in_uow, serial=True),
            owner=self.instance,
            lease_s=s.lease_s,
            max_sleep_s=s.timer_max_sleep_s,
            batch=s.timer_batch,
            max_failures=s.handler_attempts,
            sweep_grace_s=s.timer_sweep_grace_s,
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
        if self._producer is not None:
            try:
                await self._producer.stop()
            except Exception as exc:
                log.warning("outbox producer stop failed", error=repr(exc))
            self._producer = None
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
        """MongoDB and Kafka answer and the service is started (``/readyz``)."""
        return await check_readiness(lambda: self.client, self.broker, self.started)

    async def metrics_text(self) -> bytes:
        """The service's metrics, outbox backlog and due timers read now (``/metrics``)."""
        due = self.timers.due_count if self.timers is not None else None
        return await self._gauges.text(self.db if self.started else None, due)

    def http_app(self, *, manage_lifecycle: bool = True) -> FastAPI:
        """The FastAPI app; with ``manage_lifecycle`` its lifespan starts and stops the service."""
        routers = [factory(self) for factory in self._routers]
        return build_http_app(self, routers, manage_lifecycle=manage_lifecycle)
