"""Idempotent, at-least-once event consumption with quarantine, bounded retries and a DLT.

For each Kafka record:

1. Decode the CloudEvent. Input that can never be processed (not a CloudEvent, invalid
   attributes, a type the ingest topic does not carry, data failing its contract) is
   *quarantined*: kept in the service's ``quarantine`` collection and announced on
   ``ingest.quarantine`` with the reason. A known type another service handles is skipped.
2. In one MongoDB transaction: insert ``inbox`` ``{_id: "<consumer>:<event id>"}`` (unique,
   so a redelivered event stops here), run the handler, write its outbox events and timers.
3. A handler error is retried ``handler_attempts`` times with doubling backoff; then the
   record goes to ``<topic>.dlt`` with error headers and the partition moves on.
4. When MongoDB itself is unreachable the record is *not* dead-lettered: the handler raises,
   FastStream (``AckPolicy.NACK_ON_ERROR``) seeks back, and the record is redelivered.

The offset is committed only after one of these outcomes, never before (no auto-commit).
"""

from __future__ import annotations

import asyncio
import base64
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka.structs import ConsumerRecord
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from shared.envelope import Envelope, EventRejected
from shared.topics import INGEST_QUARANTINE

if TYPE_CHECKING:
    from shared.service import Service
    from shared.unit_of_work import UnitOfWork

EventHandler = Callable[[Envelope, "UnitOfWork"], Awaitable[None]]

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


class AlreadyProcessed(Exception):
    """The inbox already holds this event id for this consumer."""


@dataclass
class RecordOutcome:
    status: str  # processed | duplicate | ignored | quarantined | dead_lettered
    event_id: str | None = None


def _raw_text(value: bytes | None) -> str:
    if value is None:
        return ""
    return value[:32768].decode("utf-8", errors="replace")


class EventConsumer:
    """Routes the records of one topic to handlers by CloudEvent type."""

    def __init__(
        self,
        service: Service,
        name: str,
        topic: str,
        handlers: Mapping[str, EventHandler],
        known_types: frozenset[str] | None = None,
    ) -> None:
        self.service = service
        self.name = name
        self.topic = topic
        self.handlers = dict(handlers)
        self.known_types = known_types
        """Every type the topic's contract allows (ingest topics); ``None``: any type."""

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> RecordOutcome:
        headers = [(k, v) for k, v in (record.headers or ())]
        try:
            event = Envelope.from_kafka(record.value or b"", headers, record.key)
        except EventRejected as exc:
            return await self._refuse(record, exc, None)
        except Exception as exc:  # decoding is input handling: it must never stop the partition
            rejected = EventRejected(f"record cannot be decoded: {exc!r}"[:500], code="undecodable")
            return await self._refuse(record, rejected, None)
        handler = self.handlers.get(event.type)
        if handler is None:
            if self.known_types is not None and event.type not in self.known_types:
                # no consumer will ever take it: refused input, not another service's event
                unknown = EventRejected(
                    f"unknown event type {event.type!r} on {self.topic}", code="unknown_type"
                )
                return await self._refuse(record, unknown, event)
            return RecordOutcome("ignored", event.id)
        settings = self.service.settings
        last: BaseException | None = None
        for attempt in range(1, settings.handler_attempts + 1):
            try:
                await self.service.run_in_uow(lambda uow: self._apply(event, handler, uow))
                return RecordOutcome("processed", event.id)
            except AlreadyProcessed:
                return RecordOutcome("duplicate", event.id)
            except EventRejected as exc:
                return await self._refuse(record, exc, event)
            except ConnectionFailure:
                # The database is away: not the record's fault. Back off, then let
                # FastStream seek back so the record is delivered again later.
                await asyncio.sleep(settings.retry_backoff_s * 4)
                raise
            except Exception as exc:
                last = exc
                log.warning(
                    "handler failed",
                    consumer=self.name,
                    event_id=event.id,
                    attempt=attempt,
                    error=repr(exc),
                )
                if attempt < settings.handler_attempts:
                    await asyncio.sleep(settings.retry_backoff_s * 2 ** (attempt - 1))
        assert last is not None
        await self._dead_letter(record, last, settings.handler_attempts)
        return RecordOutcome("dead_lettered", event.id)

    async def _apply(self, event: Envelope, handler: EventHandler, uow: UnitOfWork) -> None:
        try:
            await uow.db[INBOX].insert_one(
                {"_id": f"{self.name}:{event.id}", "type": event.type, "at": datetime.now(UTC)},
                session=uow.session,
            )
        except DuplicateKeyError as exc:
            raise AlreadyProcessed(event.id) from exc
        await handler(event, uow)

    async def _refuse(
        self, record: ConsumerRecord[bytes, bytes], exc: EventRejected, event: Envelope | None
    ) -> RecordOutcome:
        """Quarantine the record; if even that fails (not for a database outage), the DLT.

        Either way the partition moves on: a record that cannot be stored must not stop
        every record behind it.
        """
        event_id = event.id if event else None
        try:
            await self._quarantine(record, exc, event)
        except ConnectionFailure:
            raise
        except Exception as failure:
            log.error("quarantine failed", consumer=self.name, error=repr(failure))
            await self._dead_letter(record, failure, 1)
            return RecordOutcome("dead_lettered", event_id)
        return RecordOutcome("quarantined", event_id)

    async def _quarantine(
        self,
        record: ConsumerRecord[bytes, bytes],
        exc: EventRejected,
        event: Envelope | None,
    ) -> None:
        """Keep refused input with its reason (and announce it on ``ingest.quarantine``)."""
        service = self.service
        record_id = f"{record.topic}:{record.partition}:{record.offset}"
        doc: dict[str, Any] = {
            "_id": record_id,
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
        log.warning("record quarantined", consumer=self.name, reason=exc.reason, record=record_id)

        async def work(uow: UnitOfWork) -> None:
            try:
                await uow.db[QUARANTINE].insert_one(doc, session=uow.session)
            except DuplicateKeyError as dup:
                raise AlreadyProcessed(record_id) from dup
            notice = Envelope(
                type=QUARANTINE_TYPE,
                source=service.source,
                district=event.district if event else "000000",
                partitionkey=record_id,
                subject=record_id,
                data={k: v for k, v in doc.items() if k not in ("_id", "raw_b64", "at")},
            )
            await uow.emit(notice, INGEST_QUARANTINE)

        try:
            await service.run_in_uow(work)
        except AlreadyProcessed:
            pass

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], exc: BaseException, attempts: int
    ) -> None:
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
