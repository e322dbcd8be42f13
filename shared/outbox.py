"""Transactional outbox (发件箱): outgoing events are written with the state change.

A unit of work writes the events it emitted as ONE ``outbox`` document (its ``events`` in
emit order) inside its MongoDB transaction; the :class:`OutboxRelay` (one active replica at
a time, by lease) publishes the documents' events in order and marks the documents sent. A
crash between commit and publish only delays the events: the relay finds them unsent on the
next pass. A crash between publish and mark-sent republishes them, which consumers absorb
through their inbox (idempotent by event id).

One document per transaction, not per event: a batch of 200 records emitting 300 events
costs one insert and, once published, one index update, where a document per event cost
each event an insert and an indexed ``$set`` (measured on SecantusDB: ~2 ms of server time
per event, most of the pipeline's MongoDB time).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from opentelemetry import propagate
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.background import stop_task, wait_for_wake
from shared.clock import utc
from shared.envelope import Envelope
from shared.leases import Lease
from shared.mongo import Document
from shared.topics import Topic

OUTBOX = "outbox"
OUTBOX_INDEXES = [IndexModel([("sent_at", ASCENDING), ("seq", ASCENDING)], name="unsent_in_order")]

Publisher = Callable[[list[Document]], Awaitable[None]]
"""Outbox events (``topic``, ``key``, ``value``, ``headers``, ``trace``) → published in that
order; raises when Kafka did not take them all."""

log = structlog.get_logger(__name__)


_last = 0


def _sequence() -> int:
    """Strictly increasing within a process (nanoseconds), roughly ordered across processes."""
    global _last
    _last = max(time.time_ns(), _last + 1)
    return _last


def outbox_entry(event: Envelope, topic: Topic | str, prefix: str = "") -> Document:
    """One event of an outbox document, on ``topic``, carrying the caller's trace context."""
    name = topic.qualified(prefix) if isinstance(topic, Topic) else topic
    key, value, headers = event.to_kafka()
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {
        "id": event.id,
        "topic": name,
        "key": key,
        "value": value,
        "headers": headers,
        "trace": carrier,
        "type": event.type,
    }


def outbox_document(entries: list[Document], by: str | None = None) -> Document:
    """A transaction's events as the one outbox document that queues them; ``by``: the
    replica that wrote it (its relay publishes it at once, see :class:`OutboxRelay`)."""
    return {
        "_id": uuid.uuid4().hex,
        "events": entries,
        "count": len(entries),
        "seq": _sequence(),
        "created_at": datetime.now(UTC),
        "sent_at": None,
        "by": by,
    }


async def outbox_events(db: AsyncDatabase[Document], **match: Any) -> list[Document]:
    """The outbox's events (sent or not) whose fields equal ``match``, in outbox order, each
    with its document's ``created_at`` and ``sent_at`` (tests, bench, operations)."""
    query = {f"events.{k}": v for k, v in match.items()}
    found: list[Document] = []
    async for doc in db[OUTBOX].find(query).sort("seq", ASCENDING):
        for event in doc.get("events", ()):
            if all(event.get(k) == v for k, v in match.items()):
                found.append({**event, "created_at": doc["created_at"], "sent_at": doc["sent_at"]})
    return found


async def pending_events(db: AsyncDatabase[Document]) -> int:
    """Events written and not yet published."""
    total = 0
    async for doc in db[OUTBOX].find({"sent_at": None}, {"count": 1}):
        total += int(doc.get("count", 1))
    return total


class OutboxRelay:
    """Publishes unsent outbox entries.

    Every replica publishes at once the outbox documents its own commits wrote, from memory
    (the unit of work hands them over: no read of what was just written). One replica at a
    time (a lease) also sweeps the unsent documents in outbox order: when its own are all
    out, and at least every ``poll_s``; it leaves a document another replica wrote less than
    ``sweep_grace_s`` ago to that replica. Before, only the lease holder published: another
    replica's events waited for its next pass (measured with two replicas: 5 to 15 s, the
    safety poll). A document both send (the sweep after the grace, its writer late) is
    published twice, which the consumers' inboxes absorb, as after a crash between publish
    and mark.

    Published documents are marked sent together, at most ``mark_every_s`` later (and
    before the sweep reads, so it never takes them for unsent): at moderate rates a commit
    carries one or two events, and marking each pass on its own was one ``update`` command
    per transaction, 16% of hotline's SecantusDB time (py-spy). The cost is the window in
    which a crash republishes what was already sent, which the inboxes absorb.
    """

    def __init__(
        self,
        db: AsyncDatabase[Document],
        publish: Publisher,
        *,
        owner: str,
        lease_s: float,
        poll_s: float,
        batch: int,
        linger_s: float = 0.005,
        sweep_grace_s: float = 0.0,
        mark_every_s: float = 0.0,
    ) -> None:
        self._db = db
        self._publish = publish
        self._lease = Lease(db, "outbox-relay", owner, lease_s)
        self._poll_s = poll_s
        self._batch = batch
        self._linger_s = linger_s
        self._grace = timedelta(seconds=sweep_grace_s)
        self._own: list[Document] = []
        self._mark_every_s = mark_every_s
        self._unmarked: list[Any] = []
        self._mark_at: float | None = None
        self._sweep_after = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def wake(self, own: Iterable[Document] = ()) -> None:
        """Called after a commit that added events (``own``: the outbox documents it wrote),
        so they leave without waiting a poll."""
        self._own.extend(own)
        self._wake.set()

    async def pending(self) -> int:
        return await pending_events(self._db)

    async def drain_once(self) -> int:
        """Publish one batch: this replica's own documents, or, if it holds the lease, the
        sweep's; returns how many events were sent.

        A batch is whole documents in outbox order, about ``batch`` events (at least one
        document, however many events it holds).
        """
        docs: list[Document] = []
        loop = asyncio.get_running_loop()
        if (not self._own or loop.time() >= self._sweep_after) and await self._lease.acquire():
            self._sweep_after = loop.time() + self._poll_s
            await self.mark_sent()  # what this relay sent is not the sweep's to send again
            docs = await self._sweep()  # this replica's documents too, in outbox order
            swept = {doc["_id"] for doc in docs}
            self._own = [doc for doc in self._own if doc["_id"] not in swept]
        if not docs and self._own:
            docs = self._take_own()
        if not docs:
            return 0
        entries = [entry for doc in docs for entry in doc.get("events", ())]
        await self._publish(entries)
        self.published += len(entries)
        self._unmarked.extend(d["_id"] for d in docs)
        if self._mark_at is None:
            self._mark_at = loop.time() + self._mark_every_s
        if loop.time() >= self._mark_at or len(self._unmarked) >= self._batch:
            await self.mark_sent()
        return max(len(entries), 1)

    async def mark_sent(self) -> None:
        """Mark what this relay published and has not marked yet, in one command."""
        if not self._unmarked:
            return
        ids, self._unmarked, self._mark_at = self._unmarked, [], None
        try:
            await self._db[OUTBOX].update_many(
                {"_id": {"$in": ids}}, {"$set": {"sent_at": datetime.now(UTC)}}
            )
        except BaseException:
            self._unmarked = ids + self._unmarked
            self._mark_at = asyncio.get_running_loop().time() + self._mark_every_s
            raise

    async def _mark_or_warn(self) -> None:
        """:meth:`mark_sent`, a failure only logged (MongoDB away): what stays unmarked is
        marked at the next try, or, after a stop, published again by the sweep."""
        try:
            await self.mark_sent()
        except Exception as exc:
            log.warning("outbox relay mark failed", error=repr(exc))

    def _until_mark(self) -> float:
        """Seconds until the published documents are due to be marked (the poll if none)."""
        if self._mark_at is None:
            return self._poll_s
        return max(0.0, min(self._poll_s, self._mark_at - asyncio.get_running_loop().time()))

    def _take_own(self) -> list[Document]:
        """This replica's documents in commit order, about ``batch`` events."""
        taken = self._whole_batch(self._own)
        self._own = self._own[len(taken) :]
        return taken

    def _whole_batch(self, docs: Iterable[Document]) -> list[Document]:
        """The first documents, whole, with about ``batch`` events (at least one document)."""
        taken: list[Document] = []
        events = 0
        for doc in docs:
            if taken and events + int(doc.get("count", 1)) > self._batch:
                break
            taken.append(doc)
            events += int(doc.get("count", 1))
        return taken

    async def _sweep(self) -> list[Document]:
        """Unsent documents in outbox order, about ``batch`` events, but not those another
        replica wrote within the grace (it publishes them itself)."""
        cutoff = datetime.now(UTC) - self._grace
        cursor = self._db[OUTBOX].find({"sent_at": None}).sort("seq", ASCENDING).limit(self._batch)
        unsent = await cursor.to_list()
        return self._whole_batch(
            doc
            for doc in unsent
            if doc.get("by") in (None, self._lease.owner)
            or not doc.get("created_at")
            or utc(doc["created_at"]) <= cutoff
        )

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                sent = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka or MongoDB away: keep the entries, try again
                log.warning("outbox relay pass failed", error=repr(exc))
                sent = 0
            if sent >= self._batch or self._own:
                continue  # a full batch, or own documents waiting: there may be more
            while True:  # until a commit wakes it or the poll is due, marking when due
                await wait_for_wake(self._wake, self._until_mark())
                if self._wake.is_set() or self._mark_at is None:
                    break
                await self._mark_or_warn()
            # Commits come in bursts (every consumer batch wakes the relay): a short linger
            # lets them gather, so one find and one update_many carry many entries.
            await asyncio.sleep(self._linger_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        await self._mark_or_warn()
        await self.release()

    async def release(self) -> None:
        """Hand the lease over at once, so another replica need not wait for it to expire."""
        await self._lease.release()
