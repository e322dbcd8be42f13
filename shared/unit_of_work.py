"""Unit of work: one MongoDB transaction holding state writes, outgoing events and timers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.clock import Clock
from shared.contracts import NotificationRequest, SupervisionLead
from shared.envelope import Envelope
from shared.mongo import Document
from shared.outbox import add_to_outbox, outbox_entry
from shared.timers import cancel_timer, schedule_timer
from shared.topics import NOTIFY_REQUESTS, SUPERVISION_LEADS, Topic


@dataclass
class UnitOfWork:
    """What a handler gets: the database, the open session, and ways to say what follows.

    Pass ``session=uow.session`` to every write so it commits (or aborts) with the rest.
    """

    db: AsyncDatabase[Document]
    session: AsyncClientSession | None
    clock: Clock
    source: str
    topic_prefix: str = ""
    emitted: list[Envelope] = field(default_factory=list)
    _outbox: list[Document] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock.now()

    async def emit(self, event: Envelope, topic: Topic | str) -> None:
        """Publish ``event`` after commit (outbox); written to the outbox by ``flush``."""
        self._outbox.append(outbox_entry(event, topic, self.topic_prefix))
        self.emitted.append(event)

    async def flush(self) -> None:
        """Write the emitted events to the outbox in one round trip, inside the transaction.

        Called once when the handler is done, before commit (the profile showed one insert
        per emitted event as a good part of a handler's MongoDB round trips).
        """
        entries, self._outbox = self._outbox, []
        await add_to_outbox(self.db, self.session, entries)

    async def request_notice(self, request: NotificationRequest) -> None:
        await self.emit(request.to_event(self.source), NOTIFY_REQUESTS)

    async def raise_lead(self, lead: SupervisionLead) -> None:
        await self.emit(lead.to_event(self.source), SUPERVISION_LEADS)

    async def schedule(
        self,
        timer_id: str,
        kind: str,
        due: datetime,
        payload: dict[str, Any] | None = None,
        subject: str | None = None,
    ) -> None:
        await schedule_timer(
            self.db,
            self.session,
            timer_id=timer_id,
            kind=kind,
            due=due,
            payload=payload,
            subject=subject,
        )

    async def cancel(self, timer_id: str) -> None:
        await cancel_timer(self.db, self.session, timer_id)
