"""Durable timers (持久化定时器) in MongoDB, claimed by lease, fired exactly once.

A timer is a document with a deterministic ``_id`` (e.g. ``sla:ORD-1:acknowledge``), a
``kind`` naming its handler, a ``due`` time and a payload. Scheduling happens inside the
handler's transaction, so a timer exists if and only if the state that needs it exists.

Firing: a replica claims one due timer (``claimed_by``/``claim_until``); then, in one
transaction, it flips ``status`` from ``pending`` to ``fired`` and runs the handler, whose
writes (state, outbox events) commit with the flip. Two replicas can never both flip it,
a crash before commit leaves it pending for the next claim once the lease runs out, and
a restart loses nothing because the timer is data, not a task in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.clock import Clock
from shared.mongo import Document

if TYPE_CHECKING:
    from shared.unit_of_work import UnitOfWork

TIMERS = "timers"
TIMER_INDEXES = [
    IndexModel([("status", ASCENDING), ("due", ASCENDING)], name="due_pending"),
    IndexModel([("subject", ASCENDING)], name="by_subject"),
]

TimerHandler = Callable[[Document, "UnitOfWork"], Awaitable[None]]

log = structlog.get_logger(__name__)


async def schedule_timer(
    db: AsyncDatabase[Document],
    session: AsyncClientSession | None,
    *,
    timer_id: str,
    kind: str,
    due: datetime,
    payload: dict[str, Any] | None = None,
    subject: str | None = None,
) -> None:
    """Create or move a pending timer (re-scheduling a fired one re-arms it)."""
    await db[TIMERS].update_one(
        {"_id": timer_id},
        {
            "$set": {
                "kind": kind,
                "due": due,
                "payload": payload or {},
                "subject": subject,
                "status": "pending",
                "claimed_by": None,
                "claim_until": None,
            },
            "$setOnInsert": {"fired_count": 0},
        },
        upsert=True,
        session=session,
    )


async def cancel_timer(
    db: AsyncDatabase[Document], session: AsyncClientSession | None, timer_id: str
) -> None:
    await db[TIMERS].update_one(
        {"_id": timer_id, "status": "pending"},
        {"$set": {"status": "cancelled"}},
        session=session,
    )


class TimerWheel:
    """Polls for due timers and fires them through registered handlers."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        clock: Clock,
        run_in_uow: Callable[[Callable[[UnitOfWork], Awaitable[bool]]], Awaitable[bool]],
        *,
        owner: str,
        lease_s: float,
        poll_s: float,
        max_failures: int = 5,
    ) -> None:
        self._max_failures = max_failures
        self._db = db
        self._clock = clock
        self._run_in_uow = run_in_uow
        self._owner = owner
        self._lease = timedelta(seconds=lease_s)
        self._poll_s = poll_s
        self._handlers: dict[str, TimerHandler] = {}
        self._task: asyncio.Task[None] | None = None
        self.fired = 0

    def register(self, kind: str, handler: TimerHandler) -> None:
        self._handlers[kind] = handler

    async def due_count(self) -> int:
        return await self._db[TIMERS].count_documents(
            {"status": "pending", "due": {"$lte": self._clock.now()}}
        )

    async def _claim(self) -> Document | None:
        now = self._clock.now()
        return await self._db[TIMERS].find_one_and_update(
            {
                "status": "pending",
                "due": {"$lte": now},
                "kind": {"$in": list(self._handlers)},
                "$or": [{"claim_until": None}, {"claim_until": {"$lte": now}}],
            },
            {"$set": {"claimed_by": self._owner, "claim_until": now + self._lease}},
            sort=[("due", ASCENDING)],
            return_document=ReturnDocument.BEFORE,
        )

    async def _fire(self, timer: Document) -> bool:
        handler = self._handlers[timer["kind"]]

        async def work(uow: UnitOfWork) -> bool:
            flipped = await self._db[TIMERS].update_one(
                {"_id": timer["_id"], "status": "pending", "claimed_by": self._owner},
                {
                    "$set": {"status": "fired", "fired_at": self._clock.now()},
                    "$inc": {"fired_count": 1},
                },
                session=uow.session,
            )
            if flipped.modified_count != 1:
                return False
            await handler(timer, uow)
            return True

        return await self._run_in_uow(work)

    async def tick(self) -> int:
        """Fire every timer due now; returns how many fired (tests call this directly)."""
        fired = 0
        while (timer := await self._claim()) is not None:
            try:
                if await self._fire(timer):
                    fired += 1
            except Exception as exc:
                # Leave it claimed: after the lease another pass (or replica) retries it,
                # until it has failed max_failures times; then it is parked as failed.
                log.error("timer failed", timer=timer["_id"], error=repr(exc))
                failures = int(timer.get("failures", 0)) + 1
                await self._db[TIMERS].update_one(
                    {"_id": timer["_id"], "status": "pending"},
                    {
                        "$set": {
                            "failures": failures,
                            "last_error": repr(exc)[:1000],
                            **({"status": "failed"} if failures >= self._max_failures else {}),
                        }
                    },
                )
        self.fired += fired
        return fired

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer pass failed", error=repr(exc))

    def start(self) -> None:
        if self._handlers:
            self._task = asyncio.create_task(self.run(), name="timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
