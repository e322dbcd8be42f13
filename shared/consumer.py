"""Idempotent, at-least-once batch consumption with quarantine, bounded retries and a DLT.

For each batch Kafka hands over (up to ``JIANDU_BATCH_MAX_RECORDS``):

1. Decode every record. Input that can never be processed (not a CloudEvent, invalid
   attributes, a type the ingest topic does not carry) is *quarantined*: kept in the
   service's ``quarantine`` collection and announced on ``ingest.quarantine`` with the
   reason. A known type another service handles is skipped.
2. In ONE MongoDB transaction for the whole batch: write the documents the consumers claim
   (a counter every batch takes; a replica's batch holding it makes this one wait and run
   again whole, ``UnitOfWork.claim``), look up the batch's event ids in the
   ``inbox`` (one ``$in`` query on its indexed ``ids`` arrays) and skip those already applied,
   prefetch the aggregates the handlers will ask for (one ``$in`` per collection), run each
   handler in Kafka order, then write the changed aggregates, ONE inbox document holding the
   batch's applied event ids, timers and outbox entries (one command each) and commit.
3. If the batch fails it is bisected until the failing record is alone (``shared.batching``);
   that record gets the single-record path: retried ``handler_attempts`` times with doubling
   backoff, quarantined if the handler refused its data (``EventRejected``), else sent to
   ``<topic>.dlt`` with error headers. Every other record commits.
4. When MongoDB cannot take the work (unreachable, or a conflict that outlasts the unit of
   work's retries: ``shared.batching.is_storage_unavailable``) nothing is dead-lettered: the
   error propagates, FastStream (``AckPolicy.NACK_ON_ERROR``) seeks every partition of the
   batch back, and the records are delivered again later (the inbox absorbs what committed).

Offsets are committed once per batch, only after one of these outcomes (no auto-commit).
"""

from __future__ import annotations

import base64
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias, TypeVar

import structlog
from aiokafka.structs import ConsumerRecord
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer
from pymongo.errors import PyMongoError

from shared.batching import is_storage_unavailable, isolate_failures, keys_of
from shared.envelope import Envelope, EventRejected
from shared.retrying import CLAIM_WAITS, Retry, transient_transaction
from shared.settings import ServiceSettings
from shared.topics import INGEST_QUARANTINE
from shared.unit_of_work import Lookup, UnitOfWork

T = TypeVar("T")

EventHandler = Callable[[Envelope, UnitOfWork], Awaitable[None]]
KeyOf = Callable[[Envelope], Any]
"""The id (or a list of ids) of the documents an event's handler will read from a collection
(``None``: none). It runs before the handler, on any input: it must not raise."""


def data_key(field: str) -> KeyOf:
    """Prefetch by a field of the event's data (absent or malformed data: nothing)."""

    def key_of(event: Envelope) -> Any:
        value = event.data.get(field) if isinstance(event.data, dict) else None
        return value if isinstance(value, str) else None  # bad data: the handler refuses it

    return key_of


INBOX = "inbox"
QUARANTINE = "quarantine"
QUARANTINE_TYPE = "jiandu.ingest.quarantined"

ERROR_HEADERS = (
    "x-original-topic",
    "x-original-partition",
    "x-original-offset",
    "x-exception",
    "x-attempts",
)

log = structlog.get_logger(__name__)


def handler_failed(exc: Exception) -> bool:
    """A failure worth trying the record again for: not a refusal of its data, and not the
    database being away (neither gets better with a retry of the record)."""
    return not isinstance(exc, EventRejected) and not is_storage_unavailable(exc)


class ConsumerHost(Protocol):
    """What a consumer needs of its service (:class:`shared.service.Service` is one)."""

    @property
    def settings(self) -> ServiceSettings: ...

    @property
    def source(self) -> str: ...

    async def run_in_uow(
        self,
        work: Callable[[UnitOfWork], Awaitable[T]],
        *,
        serial: bool = False,
        attempts: int | None = None,
    ) -> T: ...

    async def publish_raw(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None: ...


Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass
class RecordOutcome:
    status: str  # processed | duplicate | ignored | quarantined | dead_lettered
    event_id: str | None = None


@dataclass
class Item:
    """One record of a batch, decoded, with what is to be done with it."""

    index: int
    record: Record
    consumer: EventConsumer
    event: Envelope | None = None
    handler: EventHandler | None = None
    refusal: EventRejected | None = None


def _raw_text(value: bytes | None) -> str:
    if value is None:
        return ""
    return value[:32768].decode("utf-8", errors="replace")


def record_id(record: Record) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


class EventConsumer:
    """Routes the records of one topic to handlers by CloudEvent type, a batch at a time."""

    def __init__(
        self,
        service: ConsumerHost,
        name: str,
        topic: str,
        handlers: Mapping[str, EventHandler],
        known_types: frozenset[str] | None = None,
        prefetch: Mapping[str | Lookup, KeyOf] | None = None,
        tracer: Tracer | None = None,
        claims: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.service = service
        self.name = name
        self.topic = topic
        self.handlers = dict(handlers)
        self.known_types = known_types
        """Every type the topic's contract allows (ingest topics); ``None``: any type."""
        self.prefetch = dict(prefetch or {})
        self.claims = tuple(claims)
        """``(collection, id)`` of documents every batch of this consumer writes (a counter):
        claimed first (:meth:`UnitOfWork.claim`), so replicas' batches take turns."""
        self.tracer = tracer
        self.batches = 0
        self.largest_batch = 0
        self.transactions = 0
        """Batch transactions tried, bisections and single-record retries included."""

    # -- entry points -------------------------------------------------------------------

    async def handle(self, record: Record) -> RecordOutcome:
        """One record (a batch of one)."""
        return (await self.handle_batch([record]))[0]

    async def handle_batch(self, records: Iterable[Record]) -> list[RecordOutcome]:
        return await apply_batch(self.service, [self.decode(i, r) for i, r in enumerate(records)])

    # -- decoding -----------------------------------------------------------------------

    def decode(self, index: int, record: Record) -> Item:
        item = Item(index, record, self)
        headers = [(k, v) for k, v in (record.headers or ())]
        try:
            item.event = Envelope.from_kafka(record.value or b"", headers, record.key)
        except EventRejected as exc:
            item.refusal = exc
            return item
        except Exception as exc:  # decoding is input handling: it must never stop the partition
            item.refusal = EventRejected(
                f"record cannot be decoded: {exc!r}"[:500], code="undecodable"
            )
            return item
        item.handler = self.handlers.get(item.event.type)
        if item.handler is None and self.known_types is not None:
            if item.event.type not in self.known_types:
                # no consumer will ever take it: refused input, not another service's event
                item.refusal = EventRejected(
                    f"unknown event type {item.event.type!r} on {self.topic}", code="unknown_type"
                )
        return item

    def inbox_id(self, event: Envelope) -> str:
        return f"{self.name}:{event.id}"

    async def run(
        self, event: Envelope, handler: EventHandler, uow: UnitOfWork, record: Record
    ) -> None:
        """The handler, in a span that continues the producer's trace (one per event)."""
        if self.tracer is None:
            await handler(event, uow)
            return
        carrier = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}
        with self.tracer.start_as_current_span(
            f"{self.topic} process",
            context=propagate.extract(carrier),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": self.topic,
                "messaging.kafka.partition": record.partition,
                "messaging.kafka.offset": record.offset,
                "cloudevents.event_id": event.id,
                "cloudevents.event_type": event.type,
            },
        ):
            await handler(event, uow)

    # -- a record alone -----------------------------------------------------------------

    async def alone(self, item: Item, first: Exception) -> RecordOutcome:
        """The single-record path after bisection: retries, then quarantine or the DLT.

        ``first`` (the batch's failure) counts as the first of ``handler_attempts`` tries;
        the record is then applied alone after ``retry_backoff_s``, doubled each time. A
        refusal (``EventRejected``) is quarantined at once; a storage outage propagates (the
        record is delivered again later); any other last error sends it to the DLT.
        """
        settings = self.service.settings
        event_id = item.event.id if item.event else None
        tries = 0

        async def once() -> RecordOutcome:
            nonlocal tries
            tries += 1
            try:
                if tries == 1:
                    raise first
                outcome = await run_batch(self.service, [item])
                return outcome[item.index]
            except Exception as exc:
                if handler_failed(exc):
                    log.warning(
                        "handler failed",
                        consumer=self.name,
                        event_id=event_id,
                        attempt=tries,
                        error=repr(exc),
                    )
                raise

        retry = Retry(
            handler_failed,
            attempts=settings.handler_attempts,
            wait_initial=settings.retry_backoff_s,
        )
        try:
            return await retry(once)
        except EventRejected as exc:
            return await self._refuse_alone(item.record, exc, item.event)
        except Exception as exc:
            if is_storage_unavailable(exc):
                raise  # not the record's fault: it is delivered again later
            await self._dead_letter(item.record, exc, settings.handler_attempts)
            return RecordOutcome("dead_lettered", event_id)

    async def _refuse_alone(
        self, record: Record, exc: EventRejected, event: Envelope | None
    ) -> RecordOutcome:
        """Quarantine the record; if even that fails (not for a database outage), the DLT.

        Either way the partition moves on: a record that cannot be stored must not stop
        every record behind it.
        """
        event_id = event.id if event else None

        async def work(uow: UnitOfWork) -> None:
            await uow.documents(QUARANTINE).load([record_id(record)])
            await self.quarantine(record, exc, event, uow)

        try:
            await self.service.run_in_uow(work, serial=True)
        except Exception as failure:
            if is_storage_unavailable(failure):
                raise
            log.error("quarantine failed", consumer=self.name, error=repr(failure))
            await self._dead_letter(record, failure, 1)
            return RecordOutcome("dead_lettered", event_id)
        return RecordOutcome("quarantined", event_id)

    async def quarantine(
        self, record: Record, exc: EventRejected, event: Envelope | None, uow: UnitOfWork
    ) -> None:
        """Keep refused input with its reason (and announce it on ``ingest.quarantine``)."""
        rid = record_id(record)
        kept = uow.documents(QUARANTINE)
        if await kept.get(rid) is not None:
            return  # a redelivery: kept and announced already
        doc: dict[str, Any] = {
            "_id": rid,
            "consumer": self.name,
            "reason": exc.reason,
            "code": exc.code,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "event_id": event.id if event else None,
            "event_type": event.type if event else None,
            "raw": _raw_text(record.value),
            "raw_b64": base64.b64encode((record.value or b"")[:65536]).decode(),
            # pairs, not a mapping: a header name is arbitrary input, not a safe field name
            "headers": [[k, _raw_text(v)] for k, v in (record.headers or ())],
            "at": datetime.now(UTC),
            "source": "kafka",
        }
        log.warning("record quarantined", consumer=self.name, reason=exc.reason, record=rid)
        kept.add(doc)
        notice = Envelope(
            type=QUARANTINE_TYPE,
            source=self.service.source,
            district=event.district if event else "000000",
            partitionkey=rid,
            subject=rid,
            data={k: v for k, v in doc.items() if k not in ("_id", "raw_b64", "at")},
        )
        await uow.emit(notice, INGEST_QUARANTINE)

    async def _dead_letter(self, record: Record, exc: BaseException, attempts: int) -> None:
        headers = {k: v.decode("utf-8", errors="replace") for k, v in (record.headers or ())}
        headers.update(
            {
                "x-original-topic": record.topic,
                "x-original-partition": str(record.partition),
                "x-original-offset": str(record.offset),
                "x-exception": f"{type(exc).__name__}: {exc}"[:1000],
                "x-exception-trace": "".join(traceback.format_exception(exc))[-2000:],
                "x-attempts": str(attempts),
                "x-consumer": self.name,
            }
        )
        dlt = f"{record.topic}.dlt"
        log.error("record dead-lettered", consumer=self.name, dlt=dlt, error=repr(exc))
        await self.service.publish_raw(dlt, record.key, record.value or b"", headers)


async def apply_batch(service: ConsumerHost, items: list[Item]) -> list[RecordOutcome]:
    """Apply decoded records (of one or several topics) in one transaction, isolating failures."""
    for consumer in _consumers_of(items):
        consumer.batches += 1
        consumer.largest_batch = max(consumer.largest_batch, len(items))
    outcomes: dict[int, RecordOutcome] = {}
    work: list[Item] = []
    for item in items:
        if item.refusal is None and item.handler is None:
            event_id = item.event.id if item.event else None
            outcomes[item.index] = RecordOutcome("ignored", event_id)
        else:
            work.append(item)

    async def apply(chunk: list[Item]) -> None:
        if len(chunk) == 1:
            outcomes.update(await run_batch(service, chunk))
            return
        try:
            outcomes.update(
                await run_batch(service, chunk, service.settings.batch_conflict_attempts)
            )
        except PyMongoError as exc:
            if not transient_transaction(exc):
                raise
            # Another writer (a replica working other partitions) keeps changing a document
            # this batch changes too, e.g. a shared 高频 place state: every rerun of the whole
            # batch lost again. Halves hold the conflict for less time; in order, so records
            # of one key still apply in Kafka order.
            log.info("batch split after write conflicts", records=len(chunk))
            middle = len(chunk) // 2
            for half in (chunk[:middle], chunk[middle:]):
                await isolate_failures(half, apply, failed)

    async def failed(item: Item, exc: Exception) -> None:
        outcomes[item.index] = await item.consumer.alone(item, exc)

    await isolate_failures(work, apply, failed)
    return [outcomes[i.index] for i in items]


async def run_batch(
    service: ConsumerHost, chunk: list[Item], attempts: int | None = None
) -> dict[int, RecordOutcome]:
    """``chunk`` in one transaction (``attempts``: tries after write conflicts, see
    ``run_in_uow``), run again whole, after a wait, while its claim is held elsewhere."""
    waits = CLAIM_WAITS.times(service.settings.batch_claim_attempts)
    return await waits(
        service.run_in_uow, lambda uow: _apply(chunk, uow), serial=True, attempts=attempts
    )


async def _apply(chunk: list[Item], uow: UnitOfWork) -> dict[int, RecordOutcome]:
    """The batch transaction: claims, inbox and prefetch reads, handlers in order, writes at
    commit."""
    outcomes: dict[int, RecordOutcome] = {}
    consumers = _consumers_of(chunk)
    for consumer in consumers:
        consumer.transactions += 1
    for claimed, doc_id in dict.fromkeys(c for consumer in consumers for c in consumer.claims):
        await uow.claim(claimed, doc_id)  # first: a replica holding it makes this wait
    events = [i for i in chunk if i.refusal is None and i.event is not None]
    refused = [i for i in chunk if i.refusal is not None]
    seen = await applied_before(uow, [i.consumer.inbox_id(i.event) for i in events if i.event])
    applied: list[str] = []
    prefetch: dict[str | Lookup, list[Any]] = {}
    for i in events:
        assert i.event is not None
        for collection, key_of in i.consumer.prefetch.items():
            try:
                prefetch.setdefault(collection, []).extend(keys_of(key_of(i.event)))
            except Exception:  # bad input: its handler refuses it, the prefetch only helps
                continue
    for target, keys in prefetch.items():
        if isinstance(target, Lookup):
            await uow.lookup(target).load(keys)
        else:
            await uow.documents(target).load(keys)
    if refused:
        await uow.documents(QUARANTINE).load(record_id(i.record) for i in refused)
    for item in chunk:
        consumer = item.consumer
        if item.refusal is not None:
            await consumer.quarantine(item.record, item.refusal, item.event, uow)
            event_id = item.event.id if item.event else None
            outcomes[item.index] = RecordOutcome("quarantined", event_id)
            continue
        event, handler = item.event, item.handler
        assert event is not None and handler is not None
        inbox_id = consumer.inbox_id(event)
        if inbox_id in seen:
            outcomes[item.index] = RecordOutcome("duplicate", event.id)
            continue
        await consumer.run(event, handler, uow, item.record)
        seen.add(inbox_id)
        applied.append(inbox_id)
        outcomes[item.index] = RecordOutcome("processed", event.id)
    if applied:
        # one inbox document per batch, its event ids in an indexed array: a redelivered
        # event is found by ``applied_before`` as surely as with one document per event
        uow.documents(INBOX).add({"_id": uuid.uuid4().hex, "ids": applied, "at": datetime.now(UTC)})
    return outcomes


async def applied_before(uow: UnitOfWork, inbox_ids: list[str]) -> set[str]:
    """Which of these ``<consumer>:<event id>`` were applied by an earlier unit (one query)."""
    if not inbox_ids:
        return set()
    inbox = await uow.collection(INBOX)
    wanted = set(inbox_ids)
    found: set[str] = set()
    async for doc in inbox.find({"ids": {"$in": list(wanted)}}, {"ids": 1}, session=uow.session):
        found.update(i for i in doc.get("ids", ()) if i in wanted)
    uow.reads += 1
    return found


def _consumers_of(items: list[Item]) -> list[EventConsumer]:
    return list({id(i.consumer): i.consumer for i in items}.values())
