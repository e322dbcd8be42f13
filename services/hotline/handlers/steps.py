"""What every hotline handler does to a complaint: load and save it, apply a lifecycle step and
emit it, raise a 监督线索, request a notice, arm and disarm its timers.

Timer, lead and notice ids derive from business keys (order id, dispatch number, deadline), so
a retry or a redelivery never doubles anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypedDict

from pydantic_core import to_jsonable_python

from services.hotline import storage
from services.hotline.domain.duplicates import DuplicateThresholds
from services.hotline.domain.leads import BounceThresholds
from services.hotline.domain.lifecycle import Complaint, TimelineEntry, TransitionRefused
from services.hotline.domain.matters import MatterTable, cached_matters
from services.hotline.domain.routing import Route, route, triage_unit
from services.hotline.domain.sla import escalation_due, resolve_limit_days
from services.hotline.settings import HotlineSettings
from shared.api import Conflict, NotFound
from shared.city import City, load_city
from shared.contracts import LeadKind, NoticeKind, NotificationRequest, SupervisionLead
from shared.topics import HOTLINE_EVENTS
from shared.unit_of_work import UnitOfWork

P = ParamSpec("P")

EVENT_PREFIX = "jiandu.hotline.complaint."
ACTOR = "hotline"
"""The service itself: who takes the automatic steps and raises leads and notices."""
ACK_DUE = "hotline.ack_due"
RESOLVE_DUE = "hotline.resolve_due"
ESCALATE = "hotline.escalate"
CASE_CHECK = "hotline.case_check"
SNAPSHOT_DESCRIPTION_CHARS = 1000


class Acting(TypedDict):
    """Who takes a step on a complaint, as which unit, and when: the keyword arguments every
    unit transition of ``domain.lifecycle`` takes (``lifecycle.acknowledge(c, **acting)``)."""

    unit: str
    by: str
    at: dt.datetime


def timer_id(kind: str, order_id: str, *parts: object) -> str:
    """One timer per deadline (dispatch number, due instant): re-arming never re-fires one."""
    return ":".join(("hotline", kind, order_id, *(str(part) for part in parts)))


def ack_timer(complaint: Complaint) -> str:
    """签收 timer: one per dispatch."""
    return timer_id("ack", complaint.id, complaint.dispatch_seq)


def due_timer(complaint: Complaint, due: dt.datetime | None = None) -> str:
    """办结 timer: one per deadline (the current one unless ``due`` names an earlier one)."""
    when = due or complaint.due
    return timer_id("due", complaint.id, int(when.timestamp()) if when else "none")


def escalate_timer(complaint: Complaint, due: dt.datetime | None = None) -> str:
    """通报 timer: one per deadline, like :func:`due_timer`."""
    when = due or complaint.due
    return timer_id("escalate", complaint.id, int(when.timestamp()) if when else "none")


def snapshot(complaint: Complaint) -> dict[str, Any]:
    """The complaint as events carry it: no timeline (events are the timeline), a bounded
    description; the complainant travels (readers mask it by role, docs/events.md)."""
    body = complaint.model_dump(exclude={"timeline", "applied_updates"})
    body["description"] = complaint.description[:SNAPSHOT_DESCRIPTION_CHARS]
    return to_jsonable_python(body)  # type: ignore[no-any-return]


class ComplaintSteps:
    """The building blocks of the hotline handlers, with the service's settings, the city,
    the matter table and the detectors' thresholds (stateless between calls)."""

    def __init__(self, settings: HotlineSettings) -> None:
        self.settings = settings
        self.city: City = load_city()
        self.matters: MatterTable = cached_matters(settings.matters_path)
        self.bounce = BounceThresholds(
            returns=settings.bounce_returns, handovers=settings.bounce_handovers
        )
        self.duplicates = DuplicateThresholds(
            window_days=settings.duplicate_window_days,
            address_similarity=settings.duplicate_address_similarity,
            text_similarity=settings.duplicate_text_similarity,
        )

    async def command(
        self,
        uow: UnitOfWork,
        order_id: str,
        action: Callable[[Complaint], Awaitable[None]],
    ) -> Complaint:
        """An HTTP action on one complaint: load, act, save (in the caller's transaction)."""
        complaint = await self._load(uow, order_id)
        await action(complaint)
        await self._save(uow, complaint)
        return complaint

    async def _load(self, uow: UnitOfWork, order_id: str) -> Complaint:
        complaint = await storage.complaints(uow).get(order_id)
        if complaint is None:
            raise NotFound(f"no complaint {order_id}")
        return complaint

    async def _save(self, uow: UnitOfWork, complaint: Complaint) -> None:
        complaint.updated_at = uow.now()
        storage.complaints(uow).put(complaint)

    async def _step(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        transition: Callable[Concatenate[Complaint, P], TimelineEntry | None],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> TimelineEntry | None:
        """Apply one lifecycle transition and emit what it recorded; a refused transition
        answers 409 with the reason (a platform update naming it is rejected)."""
        try:
            entry = transition(complaint, *args, **kwargs)
        except TransitionRefused as exc:
            raise Conflict(str(exc)) from exc
        if entry is not None:
            await self._emit(uow, complaint, entry)
        return entry

    async def _emit(self, uow: UnitOfWork, complaint: Complaint, entry: TimelineEntry) -> None:
        """``jiandu.hotline.complaint.<verb>``: the complaint as it is now, and what changed."""
        change = {"by": entry.by, "at": entry.at, "unit": entry.unit, "reason": entry.reason}
        change.update(entry.detail)
        await uow.emit_change(
            HOTLINE_EVENTS,
            EVENT_PREFIX + entry.verb,
            "complaint",
            complaint.id,
            complaint.district,
            snapshot(complaint),
            change,
        )

    async def _lead(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        kind: LeadKind,
        parts: tuple[str, ...],
        summary: str,
        evidence: dict[str, Any],
        unit: str | None = None,
    ) -> bool:
        """Raise a 监督线索 once: its id comes from the finding, and the complaint keeps it."""
        lead_id = SupervisionLead.make_id(kind, *parts)
        if lead_id in complaint.leads:
            return False
        complaint.leads.append(lead_id)
        await uow.raise_lead(
            SupervisionLead(
                lead_id=lead_id,
                kind=kind,
                district=complaint.district,
                unit=unit or complaint.unit,
                subject_type="complaint",
                subject_id=complaint.id,
                summary=summary[:2000],
                evidence=to_jsonable_python(evidence),
                raised_at=uow.now(),
                raised_by=ACTOR,
            )
        )
        return True

    async def _notice(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        kind: NoticeKind,
        key: str,
        summary: str,
        deadline: dt.datetime | None,
        context: dict[str, Any],
    ) -> None:
        """A 催办 or 通报 to the unit holding the complaint (the triage unit when none)."""
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=key,
                kind=kind,
                recipient_unit=complaint.unit or triage_unit(self.city, complaint.district),
                district=complaint.district,
                subject_type="complaint",
                subject_id=complaint.id,
                summary=summary,
                deadline=deadline,
                context=to_jsonable_python(context),
                requested_by=ACTOR,
            )
        )

    async def _schedule(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        timer: str,
        kind: str,
        at: dt.datetime,
        **payload: Any,
    ) -> None:
        """A durable timer about this complaint (its payload names it, so a batch of timers
        loads their complaints with one query)."""
        body = {"order_id": complaint.id, **payload}
        await uow.schedule(timer, kind, at, body, subject=f"complaint/{complaint.id}")

    async def _arm_deadline(self, uow: UnitOfWork, complaint: Complaint) -> None:
        """The 办结 timer for the current deadline (or, already overdue, the 通报 one)."""
        if complaint.due is None:
            return
        if complaint.overdue:
            escalate_at = escalation_due(complaint.due, self.settings.escalate_after_days)
            await self._schedule(uow, complaint, escalate_timer(complaint), ESCALATE, escalate_at)
        else:
            await self._schedule(uow, complaint, due_timer(complaint), RESOLVE_DUE, complaint.due)

    async def _disarm_deadline(
        self, uow: UnitOfWork, complaint: Complaint, due: dt.datetime | None
    ) -> None:
        await uow.cancel(due_timer(complaint, due))
        await uow.cancel(escalate_timer(complaint, due))

    async def _move_deadline(
        self, uow: UnitOfWork, complaint: Complaint, previous_due: dt.datetime | None
    ) -> None:
        """Re-arm the deadline timers when a step moved the 办结 deadline."""
        if complaint.due != previous_due:
            await self._disarm_deadline(uow, complaint, previous_due)
            await self._arm_deadline(uow, complaint)

    def _limit_days(self, kind: str, matter_code: str | None) -> int:
        """The 办结 limit in working days for this kind of order and matter."""
        matter = self.matters.get(matter_code)
        by_kind = matter.resolve_days if matter else {}
        return resolve_limit_days(kind, self.settings.resolve_days, by_kind)

    async def _planned_route(self, uow: UnitOfWork, complaint: Complaint) -> Route:
        """Where the routing catalogue sends the complaint now."""
        matter = complaint.matter
        entry = await storage.get_entry(uow, complaint.district, matter) if matter else None
        street = complaint.street or complaint.street_text
        return route(self.city, complaint.district, street, matter, entry)
