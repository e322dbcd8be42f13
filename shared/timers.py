"""Durable timers (持久化定时器) in MongoDB, claimed in batches, fired exactly once.

A timer is a document with a deterministic ``_id`` (e.g. ``sla:ORD-1:acknowledge``), a
``kind`` naming its handler, a ``due`` time and a payload. Scheduling happens inside the
handler's transaction, so a timer exists if and only if the state that needs it exists.

``next_at`` is when the timer may next be claimed: its due time, then, once claimed, the end
of the claim's lease. One index, ``(status, next_at)``, serves the claim as a range read
however many timers wait in the future (a query over ``due`` plus a claim condition had to
scan them all).

Firing: a replica claims a batch of due timers (one ``update_many`` with a fresh claim
token), then, in one transaction, flips them from ``pending`` to ``fired`` and runs their
handlers, whose writes commit with the flip. Two replicas can never both flip one timer, a
crash before commit leaves it pending for the next claim once the lease runs out, and a
restart loses nothing because the timer is data, not a task in memory. A batch whose
handlers fail is split until the failing timer is alone; that one is retried after its
lease, up to ``max_failures`` times, then parked as ``failed``.

The wheel sleeps until the nearest ``next_at`` (capped), and is woken when a commit of this
replica schedules an earlier one: no fixed poll tick between a deadline and its firing.

Tracing: a timer keeps the trace context it was scheduled in (W3C ``traceparent``, as the
outbox keeps it per entry), and its handler runs in a span that continues that trace and links
to the wheel's own span, if any: a reminder or escalation a timer emits belongs to the trace of
the work that armed it (for a complaint, the trace of its work order, MISSION row 27).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import structlog
from opentelemetry import propagate, trace
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.background import stop_task, wait_for_wake
from shared.batching import isolate_failures, keys_of
from shared.clock import Clock
from shared.mongo import Document

TIMERS = "timers"
TIMER_INDEXES = [
    IndexModel([("status", ASCENDING), ("next_at", ASCENDING)], name="claimable"),
    IndexModel([("subject", ASCENDING)], name="by_subject"),
]


class Prefetch(Protocol):
    async def load(self, ids: Iterable[Any]) -> None: ...


class TimerUnit(Protocol):
    """What the wheel needs of a unit of work (:class:`shared.unit_of_work.UnitOfWork` is one;
    its handlers get the whole unit)."""

    @property
    def session(self) -> AsyncClientSession | None: ...

    async def collection(self, name: str) -> AsyncCollection[Document]: ...

    def documents(self, name: str) -> Prefetch: ...


U = TypeVar("U", bound=TimerUnit)
TimerHandler = Callable[[Document, U], Awaitable[None]]
TimerKeyOf = Callable[[Document], Any]
"""The id (or ids) of the documents a timer's handler will read, from the timer document."""
RunInUow = Callable[[Callable[[U], Awaitable[Any]]], Awaitable[Any]]

log = structlog.get_logger(__name__)


def schedule_timer_op(
    timer_id: str,
    kind: str,
    due: datetime,
    payload: dict[str, Any] | None = None,
    subject: str | None = None,
) -> UpdateOne:
    """Create or move a pending timer (re-scheduling a fired one re-arms it); it keeps the
    current trace context, which its handler's span continues when it fires."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return UpdateOne(
        {"_id": timer_id},
        {
            "$set": {
                "kind": kind,
                "due": due,
                "next_at": due,
                "payload": payload or {},
                "subject": subject,
                "trace": carrier,
                "status": "pending",
                "claim": None,
            },
            "$setOnInsert": {"fired_count": 0},
        },
        upsert=True,
    )


def cancel_timer_op(timer_id: str) -> UpdateOne:
    return UpdateOne({"_id": timer_id, "status": "pending"}, {"$set": {"status": "cancelled"}})


class TimerWheel(Generic[U]):
    """Claims due timers in batches and fires them through registered handlers."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        clock: Clock,
        run_in_uow: RunInUow[U],
        *,
        owner: str,
        lease_s: float,
        max_sleep_s: float,
        batch: int = 100,
        max_failures: int = 5,
        coalesce_s: float = 0.05,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._run_in_uow = run_in_uow
        self._owner = owner
        self._lease = timedelta(seconds=lease_s)
        self._max_sleep_s = max_sleep_s
        self._batch = batch
        self._max_failures = max_failures
        self._coalesce_s = coalesce_s
        self._tracer = tracer or trace.get_tracer("jiandu.timers")
        self._handlers: dict[str, TimerHandler[U]] = {}
        self._prefetch: dict[str, dict[str, TimerKeyOf]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sleeping_until: datetime | None = None
        self.fired = 0

    def register(
        self, kind: str, handler: TimerHandler[U], prefetch: Mapping[str, TimerKeyOf] | None = None
    ) -> None:
        """``prefetch``: per collection, the id(s) a timer's handler will read (one ``$in``
        per collection for the whole batch of timers fired together)."""
        self._handlers[kind] = handler
        self._prefetch[kind] = dict(prefetch or {})

    async def migrate(self) -> None:
        """Timers written before ``next_at`` existed get it from their due time."""
        old = {"status": "pending", "next_at": {"$exists": False}}
        if await self._db[TIMERS].find_one(old, {"_id": 1}) is None:
            return

        async def work(uow: U) -> None:
            timers = await uow.collection(TIMERS)
            await timers.update_many(old, [{"$set": {"next_at": "$due"}}], session=uow.session)

        await self._run_in_uow(work)

    async def due_count(self) -> int:
        return await self._db[TIMERS].count_documents(
            {"status": "pending", "next_at": {"$lte": self._clock.now()}}
        )

    def wake(self, due: datetime | None) -> None:
        """A commit scheduled a timer due at ``due``: fire it then, not at the next wake-up."""
        if due is None:
            return
        if self._sleeping_until is None or due < self._sleeping_until:
            self._wake.set()

    async def _claim(self) -> tuple[str, list[str]]:
        """Claim up to a batch of claimable timers; returns the claim token and their ids.

        In a transaction like every write to ``timers``: a replica killed in the middle of a
        transaction leaves its writes locked until the server reaps it, and on SecantusDB a
        plain write to such a document retries without end while holding the collection
        (measured: the whole server stalls); a transaction's write fails at once instead.
        """
        now = self._clock.now()
        query = {"status": "pending", "next_at": {"$lte": now}}
        token = f"{self._owner}:{uuid.uuid4().hex}"

        async def work(uow: U) -> list[str]:
            timers = await uow.collection(TIMERS)
            candidates = await (
                timers.find(query, {"_id": 1}, session=uow.session)
                .sort("next_at", ASCENDING)
                .limit(self._batch)
            ).to_list()
            ids = [c["_id"] for c in candidates]
            if ids:
                await timers.update_many(
                    {"_id": {"$in": ids}, **query},
                    {
                        "$set": {
                            "claim": token,
                            "claimed_by": self._owner,
                            "next_at": now + self._lease,
                        }
                    },
                    session=uow.session,
                )
            return ids

        ids: list[str] = await self._run_in_uow(work)
        return token, ids

    async def _fire_batch(self, token: str, ids: list[str]) -> int:
        """Flip and run the claimed timers among ``ids`` in one transaction."""

        async def work(uow: U) -> int:
            timers = await uow.collection(TIMERS)
            mine = await timers.find(
                {"_id": {"$in": ids}, "status": "pending", "claim": token}, session=uow.session
            ).to_list()
            if not mine:
                return 0
            mine.sort(key=lambda t: (t["due"], t["_id"]))
            wanted: dict[str, list[Any]] = {}
            for timer in mine:
                for collection, key_of in self._prefetch.get(timer["kind"], {}).items():
                    try:
                        wanted.setdefault(collection, []).extend(keys_of(key_of(timer)))
                    except Exception:  # a malformed payload: its handler says so
                        continue
            for collection, keys in wanted.items():
                await uow.documents(collection).load(keys)
            await timers.update_many(
                {"_id": {"$in": [t["_id"] for t in mine]}, "status": "pending", "claim": token},
                {
                    "$set": {"status": "fired", "fired_at": self._clock.now()},
                    "$inc": {"fired_count": 1},
                },
                session=uow.session,
            )
            for timer in mine:
                handler = self._handlers.get(timer["kind"])
                if handler is None:
                    raise LookupError(f"no handler for timer kind {timer['kind']!r}")
                with self._span(timer):
                    await handler(timer, uow)
            return len(mine)

        fired: int = await self._run_in_uow(work)
        return fired

    def _span(self, timer: Document) -> AbstractContextManager[trace.Span]:
        """The span a timer's handler runs in: a child of the context that scheduled it
        (the same trace), linked to the wheel's current span when there is one."""
        here = trace.get_current_span().get_span_context()
        return self._tracer.start_as_current_span(
            f"timer {timer['kind']}",
            context=propagate.extract(timer.get("trace") or {}),
            links=[trace.Link(here)] if here.is_valid else None,
            attributes={
                "jiandu.timer.id": str(timer["_id"]),
                "jiandu.timer.kind": str(timer["kind"]),
                "jiandu.timer.subject": str(timer.get("subject") or ""),
            },
        )

    async def _failed(self, token: str, timer_id: str, exc: BaseException) -> None:
        """Leave it claimed: after the lease it is tried again, until it has failed too often."""
        log.error("timer failed", timer=timer_id, error=repr(exc))

        async def work(uow: U) -> None:
            timers = await uow.collection(TIMERS)
            timer = await timers.find_one({"_id": timer_id, "claim": token}, session=uow.session)
            if timer is None:
                return
            failures = int(timer.get("failures", 0)) + 1
            await timers.update_one(
                {"_id": timer_id, "status": "pending", "claim": token},
                {
                    "$set": {
                        "failures": failures,
                        "last_error": repr(exc)[:1000],
                        **({"status": "failed"} if failures >= self._max_failures else {}),
                    }
                },
                session=uow.session,
            )

        await self._run_in_uow(work)

    async def tick(self) -> int:
        """Fire every timer due now; returns how many fired (tests call this directly)."""
        fired = 0
        while True:
            token, ids = await self._claim()
            if ids:
                fired += await self._fire_claimed(token, ids)
            if len(ids) < self._batch:
                break
        self.fired += fired
        return fired

    async def _fire_claimed(self, token: str, ids: list[str]) -> int:
        counts: list[int] = []

        async def fire(chunk: list[str]) -> None:
            counts.append(await self._fire_batch(token, chunk))

        async def failed(timer_id: str, exc: BaseException) -> None:
            await self._failed(token, timer_id, exc)

        await isolate_failures(ids, fire, failed)
        return sum(counts)

    async def _sleep_s(self) -> float:
        """Seconds until the nearest claimable timer, capped; remembers the target."""
        nearest = await self._db[TIMERS].find_one(
            {"status": "pending"}, {"next_at": 1}, sort=[("next_at", ASCENDING)]
        )
        cap = self._max_sleep_s
        if nearest is None or nearest.get("next_at") is None:
            self._sleeping_until = self._clock.now() + timedelta(seconds=cap)
            return cap
        at: datetime = nearest["next_at"]
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        self._sleeping_until = at
        return max(0.0, min(cap, (at - self._clock.now()).total_seconds()))

    async def run(self) -> None:
        while True:
            try:
                # Commits that wake the wheel come in bursts: let them gather, so one pass
                # (one claim, one transaction) fires what a burst scheduled.
                await asyncio.sleep(self._coalesce_s)
                self._wake.clear()
                await self.tick()
                delay = await self._sleep_s()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer pass failed", error=repr(exc))
                delay = self._max_sleep_s
            if delay > 0:
                await wait_for_wake(self._wake, delay)
            self._sleeping_until = None

    def start(self) -> None:
        if self._handlers:
            self._task = asyncio.create_task(self.run(), name="timers")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
