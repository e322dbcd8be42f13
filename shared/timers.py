"""Durable timers (持久化定时器) in MongoDB, fired in batches, exactly once.

A timer is a document with a deterministic ``_id`` (e.g. ``sla:ORD-1:acknowledge``), a
``kind`` naming its handler, a ``due`` time and a payload. Scheduling happens inside the
handler's transaction, so a timer exists if and only if the state that needs it exists.

``next_at`` is when the timer may next fire: its due time, or, after its handler failed, the
time of its next try. One index, ``(status, next_at)``, serves the look-up of due timers as a
range read however many timers wait in the future.

Firing: every wheel fires at once the timers its own replica's commits scheduled (the unit of
work hands their ids over); one wheel at a time (a lease, like the outbox relay's) also sweeps
every other due timer, leaving one another live replica has just scheduled to that replica
for ``sweep_grace_s``. A batch of timers fires in ONE transaction that flips those still
``pending`` and due to ``fired`` and runs their handlers, whose writes commit with the flip
(written at commit with them: one command fewer per batch): that flip, not the lease, makes
firing exactly-once (a second wheel flipping the same timer after this one's snapshot
conflicts and, retried, finds it fired). No claim is written first. A crash before commit
leaves the timers pending for the next pass, and a restart loses nothing because the timer is
data, not a task in memory. A batch whose handlers fail is split until the failing timer is
alone; that one is tried again ``lease_s`` later, up to ``max_failures`` times, then parked as
``failed``.

Every write to ``timers`` is in a transaction: a replica killed in the middle of one leaves
its writes locked until the server reaps it, and on SecantusDB a plain write to such a
document retries without end while holding the collection (measured: the whole server
stalls); a transaction's write fails at once instead.

The wheel sleeps until the nearest timer it would fire (capped), and is woken when a commit of
this replica schedules an earlier one: no fixed poll tick between a deadline and its firing.

A timer a unit schedules already due (a backlog after an outage, a replay of history, a late
event) fires in that unit itself (:meth:`TimerWheel.fire_due_now`,
``JIANDU_TIMERS_FIRE_AT_COMMIT``): written as ``fired`` with its handler's writes, it is never
pending in any committed state, so no wheel can fire it again; if its handler fails, the unit
runs again without it and the wheel fires it with its bounded retries.

Tracing: a timer keeps the trace context it was scheduled in (W3C ``traceparent``, as the
outbox keeps it per entry), and its handler runs in a span that continues that trace and links
to the wheel's own span, if any: a reminder or escalation a timer emits belongs to the trace of
the work that armed it (for a complaint, the trace of its work order, MISSION row 27).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import structlog
from opentelemetry import propagate, trace
from pymongo import ASCENDING, IndexModel, UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared.background import stop_task, wait_for_wake
from shared.batching import isolate_failures, keys_of
from shared.clock import Clock, utc
from shared.leases import Lease
from shared.mongo import Document

TIMERS = "timers"
FIRE_NOW_ROUNDS = 8
"""Rounds of :meth:`TimerWheel.fire_due_now` per unit (a due timer's handler may schedule
another due one: 办结超期 then 超期通报); what a last round schedules is the wheel's."""
OWN_TIMERS_KEPT = 10_000
"""Timers a wheel remembers having scheduled itself (to fire them without the sweep)."""
TIMER_INDEXES = [
    IndexModel([("status", ASCENDING), ("next_at", ASCENDING)], name="claimable"),
]


class DueTimerFailed(Exception):
    """A timer fired in the unit that scheduled it failed; the unit runs again without."""


class Prefetch(Protocol):
    async def load(self, ids: Iterable[Any]) -> None: ...


class TimerUnit(Protocol):
    """What the wheel needs of a unit of work (:class:`shared.unit_of_work.UnitOfWork` is one;
    its handlers get the whole unit)."""

    @property
    def session(self) -> AsyncClientSession | None: ...

    async def collection(self, name: str) -> AsyncCollection[Document]: ...

    def documents(self, name: str) -> Prefetch: ...

    def lookup(self, lookup: Any) -> Prefetch: ...

    def fire_timers(self, flip: UpdateMany) -> None: ...

    def due_now(self, kinds: Iterable[str]) -> list[Document]: ...

    def fire_now(self, timer: Document) -> None: ...


U = TypeVar("U", bound=TimerUnit)
TimerHandler = Callable[[Document, U], Awaitable[None]]
TimerKeyOf = Callable[[Document], Any]
"""The id (or ids) of the documents a timer's handler will read, from the timer document."""
RunInUow = Callable[[Callable[[U], Awaitable[Any]]], Awaitable[Any]]

log = structlog.get_logger(__name__)


def timer_fields(
    kind: str,
    due: datetime,
    payload: dict[str, Any] | None = None,
    subject: str | None = None,
    scheduled_by: str | None = None,
) -> Document:
    """A pending timer's fields; it keeps the current trace context, which its handler's span
    continues when it fires."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {
        "kind": kind,
        "due": due,
        "next_at": due,
        "payload": payload or {},
        "subject": subject,
        "trace": carrier,
        "status": "pending",
        "failures": 0,
        "scheduled_by": scheduled_by,
        "scheduled_at": datetime.now(UTC),  # wall clock, like the sweep's grace
    }


def timer_write_op(
    timer_id: str, fields: Document, *, fired: bool = False, namespace: str | None = None
) -> UpdateOne:
    """Create or move a timer to ``fields`` (re-scheduling a fired one re-arms it); ``fired``:
    it fired in the writing unit (:meth:`shared.unit_of_work.UnitOfWork.fire_now`), which
    counts the firing."""
    count = {"$inc": {"fired_count": 1}} if fired else {"$setOnInsert": {"fired_count": 0}}
    return UpdateOne({"_id": timer_id}, {"$set": fields, **count}, upsert=True, namespace=namespace)


def cancel_timers_op(timer_ids: Iterable[str], namespace: str | None = None) -> UpdateMany:
    """Cancel the pending timers among ``timer_ids`` in ONE statement (``namespace``,
    ``"<db>.timers"``: for a client-level bulk write across collections).

    One statement, not one per timer: a step that moves a deadline cancels two timers, of
    which one often never existed, and SecantusDB pays each update statement's overhead
    (its indexes' options, candidates) even when it matches nothing.
    """
    return UpdateMany(
        {"_id": {"$in": list(timer_ids)}, "status": "pending"},
        {"$set": {"status": "cancelled"}},
        namespace=namespace,
    )


Scheduled = deque[tuple[datetime, list[str]]]
"""(wall time of the commit, timer ids it scheduled), oldest first."""


def forget_before(recent: Scheduled, cutoff: datetime) -> None:
    """Drop what was scheduled at or before ``cutoff``."""
    while recent and recent[0][0] <= cutoff:
        recent.popleft()


def recently_scheduled(recent: Scheduled, cutoff: datetime) -> list[str]:
    """The timer ids scheduled after ``cutoff``, each once."""
    return list(dict.fromkeys(i for at, ids in recent if at > cutoff for i in ids))


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
        sweep_grace_s: float = 0.0,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._run_in_uow = run_in_uow
        self._owner = owner
        self._lease = Lease(db, "timer-wheel", owner, lease_s)
        self._lease_s = lease_s
        self._holding = False
        self._own: dict[str, datetime] = {}
        self._recent: Scheduled = deque()
        """When this replica's commits scheduled which timers, for the sweep's grace."""
        self._retry_after = timedelta(seconds=lease_s)
        self._sweep_grace = timedelta(seconds=sweep_grace_s)
        self._max_sleep_s = max_sleep_s
        self._batch = batch
        self._max_failures = max_failures
        self._coalesce_s = coalesce_s
        self._tracer = tracer or trace.get_tracer("jiandu.timers")
        self._handlers: dict[str, TimerHandler[U]] = {}
        self._prefetch: dict[str, dict[Any, TimerKeyOf]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sleeping_until: datetime | None = None
        self._quiet_until: datetime | None = None
        """The sweeping wheel's knowledge: no timer is due before this but ones scheduled
        since, which their replicas fire (None: look again)."""
        self._swept_at: datetime | None = None
        self._left_for: timedelta | None = None
        """The last sweep's time, and how long until a due timer it left to another replica
        (within the grace) becomes the sweep's to fire."""
        self.fired = 0

    def register(
        self,
        kind: str,
        handler: TimerHandler[U],
        prefetch: Mapping[Any, TimerKeyOf] | None = None,
    ) -> None:
        """``prefetch``: per collection, the id(s) a timer's handler will read, or per
        look-up by another field (a :class:`shared.unit_of_work.Lookup`), the values; one
        ``$in`` each for the whole batch of timers fired together."""
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
        """Something is due at ``due``: fire it then, not at the next wake-up."""
        if due is None:
            return
        if self._sleeping_until is None or due < self._sleeping_until:
            self._wake.set()

    def scheduled(self, timers: Mapping[str, datetime]) -> None:
        """A commit of this replica scheduled these timers (id → due): this wheel fires them
        when due even when another replica's wheel holds the sweep."""
        if not timers:
            return
        wall = datetime.now(UTC)  # the sweep's grace runs on the wall clock
        self._recent.append((wall, list(timers)))
        forget_before(self._recent, wall - self._sweep_grace)
        if len(self._own) < OWN_TIMERS_KEPT:
            self._own.update(timers)
        else:  # beyond that, the sweeping wheel has them: it must look again
            self._quiet_until = None
        self.wake(min(timers.values()))

    async def tick(self) -> int:
        """Fire the due timers this replica scheduled, and, if it holds the sweep, every
        other due timer; returns how many fired (tests call this directly)."""
        fired = 0
        now = self._clock.now()
        own = [timer_id for timer_id, due in self._own.items() if due <= now]
        for timer_id in own:
            del self._own[timer_id]
        for start in range(0, len(own), self._batch):
            fired += await self._fire_due(own[start : start + self._batch])
        self._holding = await self._lease.acquire()
        quiet = self._quiet_until is not None and now < self._quiet_until
        self._left_for = None
        while self._holding and not quiet:
            self._quiet_until = None  # the next sleep looks for the nearest timer again
            ids, full = await self._due_ids()
            if ids:
                fired += await self._fire_due(ids)
            if not ids or not full:
                break
        self.fired += fired
        return fired

    async def _due_ids(self) -> tuple[list[str], bool]:
        """The ids of up to a batch of due timers, earliest first (an index-range read), and
        whether the batch was full.

        A timer another wheel scheduled less than the sweep's grace ago (wall clock) is left
        to that wheel, which fires it at once: two wheels firing the same timers conflicted,
        and each conflict ran a whole batch again.
        """
        self._swept_at = self._clock.now()
        query = {"status": "pending", "next_at": {"$lte": self._swept_at}}
        fields = {"_id": 1, "scheduled_by": 1, "scheduled_at": 1}
        cursor = self._db[TIMERS].find(query, fields).sort("next_at", ASCENDING).limit(self._batch)
        found = await cursor.to_list()
        wall = datetime.now(UTC)
        ids = []
        for doc in found:
            if self._left_to_another(doc, wall - self._sweep_grace):
                left_for = utc(doc["scheduled_at"]) + self._sweep_grace - wall
                self._left_for = min(self._left_for or left_for, left_for)
            else:
                ids.append(doc["_id"])
        return ids, len(found) >= self._batch

    def _left_to_another(self, timer: Document, recent: datetime) -> bool:
        by, at = timer.get("scheduled_by"), timer.get("scheduled_at")
        if not by or by == self._owner or not isinstance(at, datetime):
            return False
        return utc(at) > recent

    async def _fire_due(self, ids: list[str]) -> int:
        counts: list[int] = []

        async def fire(chunk: list[str]) -> None:
            counts.append(await self._fire_batch(chunk))

        await isolate_failures(ids, fire, self._failed)
        return sum(counts)

    async def _fire_batch(self, ids: list[str]) -> int:
        """Flip the timers of ``ids`` still pending and due, and run them: one transaction."""
        now = self._clock.now()
        still_due = {"_id": {"$in": ids}, "status": "pending", "next_at": {"$lte": now}}

        async def work(uow: U) -> int:
            timers = await uow.collection(TIMERS)
            mine = await timers.find(still_due, session=uow.session).to_list()
            if not mine:
                return 0
            mine.sort(key=lambda t: (t["due"], t["_id"]))
            uow.fire_timers(
                UpdateMany(
                    {**still_due, "_id": {"$in": [t["_id"] for t in mine]}},
                    {
                        "$set": {"status": "fired", "fired_at": now, "fired_by": self._owner},
                        "$inc": {"fired_count": 1},
                    },
                    namespace=f"{self._db.name}.{TIMERS}",
                )
            )
            await self._run_handlers(uow, mine)
            return len(mine)

        fired: int = await self._run_in_uow(work)
        return fired

    async def _run_handlers(self, uow: U, timers: list[Document]) -> None:
        """Prefetch what the timers' handlers read (one ``$in`` per collection or look-up by
        another field), run them."""
        wanted: dict[Any, list[Any]] = {}
        for timer in timers:
            for collection, key_of in self._prefetch.get(timer["kind"], {}).items():
                try:
                    wanted.setdefault(collection, []).extend(keys_of(key_of(timer)))
                except Exception:  # a malformed payload: its handler says so
                    continue
        for target, keys in wanted.items():
            found = uow.documents(target) if isinstance(target, str) else uow.lookup(target)
            await found.load(keys)
        for timer in timers:
            handler = self._handlers.get(timer["kind"])
            if handler is None:
                raise LookupError(f"no handler for timer kind {timer['kind']!r}")
            with self._span(timer):
                await handler(timer, uow)

    async def fire_due_now(self, uow: U) -> int:
        """Fire, in ``uow`` itself, the timers it scheduled that are due already (a backlog
        after an outage, a replay of history, a late event), then those their handlers
        schedule due; returns how many fired.

        Handed to the wheel, each such timer cost a second transaction after the commit
        that re-read and re-wrote what the first had just written (measured in the bench,
        where the demo's deadlines are days past: nearly one timer batch per consumer batch),
        and its effects (a reminder, an escalation) waited for it. A handler's failure
        raises :class:`DueTimerFailed`: the caller runs the unit again without this, and the
        wheel fires the timer with its bounded retries.
        """
        fired = 0
        for _ in range(FIRE_NOW_ROUNDS):
            due = uow.due_now(self._handlers)
            if not due:
                break
            for timer in due:
                uow.fire_now(timer)
            try:
                await self._run_handlers(uow, due)
            except PyMongoError:
                raise  # the database's, not the timer's: the unit runs again as it is
            except Exception as exc:
                raise DueTimerFailed(f"a due timer failed: {exc!r}") from exc
            fired += len(due)
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

    async def _failed(self, timer_id: str, exc: BaseException) -> None:
        """Try it again ``retry_after`` later, until it has failed too often."""
        log.error("timer failed", timer=timer_id, error=repr(exc))
        retry_at = self._clock.now() + self._retry_after
        self._quiet_until = None  # it is due again at ``retry_at``: the sweep must see it

        async def work(uow: U) -> None:
            timers = await uow.collection(TIMERS)
            pending = {"_id": timer_id, "status": "pending"}
            timer = await timers.find_one(pending, session=uow.session)
            if timer is None:
                return
            failures = int(timer.get("failures", 0)) + 1
            await timers.update_one(
                pending,
                {
                    "$set": {
                        "failures": failures,
                        "last_error": repr(exc)[:1000],
                        "next_at": retry_at,
                        **({"status": "failed"} if failures >= self._max_failures else {}),
                    }
                },
                session=uow.session,
            )

        await self._run_in_uow(work)

    async def _sleep_s(self) -> float:
        """Seconds until the nearest timer this wheel would fire, capped; remembers it.

        The sweeping wheel looks at the pending timers due before the cap, once after each
        sweep (until the nearest is due, or the cap, it fires only its own: the pass a commit
        of its own wakes reads nothing else); another replica's wheel only at its own, and
        asks for the sweep again before the holder's lease could run out.
        """
        now = self._clock.now()
        cap = self._max_sleep_s if self._holding else min(self._max_sleep_s, self._lease_s / 3)
        candidates = list(self._own.values())
        if not self._holding:
            self._quiet_until = None
        elif self._quiet_until is None:
            quiet = now + timedelta(seconds=cap)
            if self._left_for is not None:  # not before: its replica fires it meanwhile
                quiet = min(quiet, now + self._left_for)
            # What the last sweep saw due was fired or left: the nearest timer after it, and
            # only up to the cap (a later one changes nothing): an index range of the timers
            # due before the cap, not every pending one sorted (SecantusDB sorts the whole
            # range in memory: 0.5 s with 10,000 future deadlines, measured).
            window: dict[str, Any] = {"$lte": quiet}
            if self._swept_at is not None:
                window["$gt"] = self._swept_at
            pending = {"status": "pending", "next_at": window}
            nearest = await self._db[TIMERS].find_one(
                pending, {"next_at": 1}, sort=[("next_at", ASCENDING)]
            )
            if nearest is not None and nearest.get("next_at") is not None:
                quiet = min(quiet, utc(nearest["next_at"]))
            self._quiet_until = quiet
        if self._quiet_until is not None:
            candidates.append(self._quiet_until)
        target = min([now + timedelta(seconds=cap), *candidates])
        self._sleeping_until = target
        return max(0.0, (target - now).total_seconds())

    async def run(self) -> None:
        while True:
            try:
                # Commits that wake the wheel come in bursts: let them gather, so one pass
                # (one read, one transaction) fires what a burst scheduled.
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
        await self._hand_over_own()
        await self._lease.release()  # the next replica sweeps at once

    async def _hand_over_own(self) -> None:
        """The timers this wheel scheduled within the sweep's grace become anyone's at once
        (a replica that stopped cleanly does not make the sweep wait out its grace; a crashed
        one does).

        Only those: the sweep leaves a timer to its replica only while it was scheduled less
        than the grace ago (wall clock), so an older one needs no hand-over. Handing over all
        the wheel remembered (up to ``OWN_TIMERS_KEPT``, mostly SLA deadlines days ahead) held
        a stop for 3.8 s with a few thousand on SecantusDB.
        """
        own = recently_scheduled(self._recent, datetime.now(UTC) - self._sweep_grace)
        self._own, self._recent = {}, deque()
        if not own:
            return

        async def work(uow: U) -> None:
            timers = await uow.collection(TIMERS)
            await timers.update_many(
                {"_id": {"$in": own}, "status": "pending", "scheduled_by": self._owner},
                {"$set": {"scheduled_by": None}},
                session=uow.session,
            )

        try:
            await self._run_in_uow(work)
        except Exception as exc:  # MongoDB away at shutdown: the sweep's grace covers it
            log.warning("own timers not handed over", error=repr(exc))
