"""What every inspection handler shares: the events it announces, and a finding recorded
once as a flag and raised as its 监督线索 (supervision lead), with the notice's reply date."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from services.inspection import storage
from services.inspection.domain.rules import RepeatThresholds
from services.inspection.settings import InspectionSettings
from shared.clock import utc
from shared.contracts import LeadKind, NoticeKind, NotificationRequest, SupervisionLead
from shared.mongo import Document
from shared.topics import INSPECTION_EVENTS
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

EVENT_PREFIX = "jiandu.inspection."
EVENT_VERBS: dict[str, tuple[str, ...]] = {
    "plan": ("filed",),
    "inspection": ("recorded", "repeated"),
    "officer": ("changed",),
    "review": ("recorded",),
    "rate": ("crossed",),
}
"""Every state change this service announces on ``inspection.events`` (AsyncAPI lists them)."""
RAISED_BY = "inspection"


def snapshot(doc: Document) -> dict[str, Any]:
    """The entity as events carry it: ``id`` instead of ``_id``, JSON values only."""
    return {"id": doc["_id"], **to_jsonable_python({k: v for k, v in doc.items() if k != "_id"})}


def officer_snapshot(doc: Document) -> dict[str, Any]:
    """What ``officer.changed`` carries: the registry entry (no personal name)."""
    return snapshot({k: v for k, v in doc.items() if k != "name"})


def cst_day(when: dt.datetime) -> dt.date:
    return utc(when).astimezone(CST).date()


class Findings:
    """Base of the inspection handlers: settings, announcements, findings (stateless)."""

    def __init__(self, settings: InspectionSettings) -> None:
        self.settings = settings
        self.repeats = RepeatThresholds(
            window_days=settings.repeat_window_days,
            max_units=settings.repeat_max_units,
            max_visits=settings.repeat_max_visits,
        )

    async def _emit(
        self,
        uow: UnitOfWork,
        entity: str,
        verb: str,
        doc: Document,
        change: dict[str, Any],
        body: dict[str, Any] | None = None,
    ) -> None:
        await uow.emit_change(
            INSPECTION_EVENTS,
            f"{EVENT_PREFIX}{entity}.{verb}",
            entity,
            doc["_id"],
            doc["district"],
            body or snapshot(doc),
            change,
        )

    async def _finding(
        self,
        uow: UnitOfWork,
        kind: LeadKind,
        key: str,
        *,
        district: str,
        unit: str | None,
        subject_type: str,
        subject_id: str,
        summary: str,
        evidence: dict[str, Any],
        inspection_id: str | None = None,
    ) -> bool:
        """Record a finding once and raise its 监督线索 (same deterministic id)."""
        lead_id = SupervisionLead.make_id(kind, key)
        evidence = to_jsonable_python(evidence)
        new = await storage.add_flag(
            uow,
            {
                "_id": f"{kind.value}:{key}",
                "kind": kind.value,
                "district": district,
                "unit": unit,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "inspection_id": inspection_id,
                "summary": summary,
                "evidence": evidence,
                "lead_id": lead_id,
                "raised_at": uow.now(),
            },
        )
        if new:
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=lead_id,
                    kind=kind,
                    district=district,
                    unit=unit,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    summary=summary[:2000],
                    evidence=evidence,
                    raised_at=uow.now(),
                    raised_by=RAISED_BY,
                )
            )
        return new

    async def _notice(
        self,
        uow: UnitOfWork,
        key: str,
        *,
        unit: str,
        district: str,
        subject_type: Literal["inspection", "lead"],
        subject_id: str,
        summary: str,
        context: dict[str, Any],
    ) -> None:
        """督办通知 to the unit: reply within ``notice_reply_days`` full days (CST); ``key``
        makes it once per business key (notify drops a resent request)."""
        day = cst_day(uow.now()) + dt.timedelta(days=self.settings.notice_reply_days + 1)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"inspection:{key}",
                kind=NoticeKind.SUPERVISION_NOTICE,
                recipient_unit=unit,
                district=district,
                subject_type=subject_type,
                subject_id=subject_id,
                summary=summary,
                deadline=dt.datetime.combine(day, dt.time(0), CST).astimezone(dt.UTC),
                context=context,
                requested_by=RAISED_BY,
            )
        )
