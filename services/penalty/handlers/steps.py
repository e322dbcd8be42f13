"""What every penalty handler does to a filing: save it and emit its change, record a finding
(and its 监督线索), raise a lead, ask notify to send the unit a notice, work out its deadline.

Timer, flag, lead and notice ids derive from business keys (case id, letter id, unit-month),
so a retry or a redelivery never doubles anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic_core import to_jsonable_python

from services.penalty import storage
from services.penalty.domain.anomaly import Thresholds
from services.penalty.domain.catalogue import Catalogue, cached_catalogue
from services.penalty.domain.filing import FilingDeadline, filing_deadline
from services.penalty.domain.records import Filing, Flag
from services.penalty.settings import PenaltySettings
from shared.aggregate import Aggregate
from shared.clock import utc
from shared.contracts import (
    LeadKind,
    NoticeKind,
    NotificationRequest,
    SupervisionLead,
)
from shared.topics import PENALTY_EVENTS
from shared.unit_of_work import UnitOfWork

EVENT_PREFIX = "jiandu.penalty.filing."
FILING_DUE = "penalty.filing_due"
REPLY_DUE = "penalty.reply_due"
RAISED_BY = "penalty"
"""The service itself: who raises its leads and requests its notices."""


def filing_due_timer(case_id: str) -> str:
    """备案期限: one timer a case, cancelled when the unit files."""
    return f"penalty:filing-due:{case_id}"


def reply_due_timer(letter_id: str) -> str:
    """回复期限 of a 监督建议书: one timer a letter, cancelled by the reply."""
    return f"penalty:reply-due:{letter_id}"


def snapshot(item: Aggregate) -> dict[str, Any]:
    """The entity as events carry it: ``id`` instead of ``_id``, JSON values only.

    A private person's name is reduced to its first character (the decision itself is
    public, the person's name need not travel on every topic).
    """
    doc = item.to_doc()
    body = {k: v for k, v in doc.items() if k != "_id"}
    name = body.get("party_name")
    if body.get("party_type") == "individual" and isinstance(name, str) and name:
        body["party_name"] = name[0] + "*" * (len(name) - 1)
    return {"id": doc["_id"], **to_jsonable_python(body)}


class FilingSteps:
    """The settings, catalogue and thresholds of one service instance, and the steps every
    handler takes on a filing (stateless between calls)."""

    def __init__(self, settings: PenaltySettings) -> None:
        self.settings = settings
        self.catalogue: Catalogue = cached_catalogue(settings.catalogue_path)
        self.thresholds = Thresholds(
            history_months=settings.anomaly_history_months,
            min_history_months=settings.anomaly_min_history_months,
            own_growth=settings.anomaly_own_growth,
            peer_ratio=settings.anomaly_peer_ratio,
            min_peers=settings.anomaly_min_peers,
            min_amount=settings.anomaly_min_amount,
        )

    async def emit(
        self, uow: UnitOfWork, filing: Filing, verb: str, change: dict[str, Any]
    ) -> None:
        """``jiandu.penalty.filing.<verb>``: the filing as it is now and what changed."""
        filing.refresh(uow.now())
        await uow.emit_change(
            PENALTY_EVENTS,
            EVENT_PREFIX + verb,
            "filing",
            filing.id,
            filing.district,
            snapshot(filing),
            change,
        )

    def save(self, uow: UnitOfWork, filing: Filing) -> None:
        filing.refresh(uow.now())
        storage.filings(uow).put(filing)

    def deadline(self, filing: Filing) -> FilingDeadline:
        """备案期限 of a top-tier penalty, counted from its decision."""
        return filing_deadline(
            utc(filing.decision_time),
            self.settings.filing_deadline_days,
            self.settings.filing_deadline_calendar,
            roll_over=self.settings.filing_deadline_roll_over,
        )

    async def flag(
        self,
        uow: UnitOfWork,
        filing: Filing,
        kind: str,
        reasons: list[str],
        evidence: dict[str, Any],
        lead_kind: LeadKind | None = None,
    ) -> bool:
        """Record a finding once; with ``lead_kind`` it also raises the 监督线索 (same id).
        False when it was already recorded (nothing to announce)."""
        lead_id = SupervisionLead.make_id(lead_kind, filing.id) if lead_kind else None
        new = await storage.add_flag(
            uow,
            Flag(
                id=f"{kind}:{filing.id}",
                kind=kind,
                case_id=filing.id,
                district=filing.district,
                unit=filing.unit,
                reasons=reasons,
                evidence=to_jsonable_python(evidence),
                lead_id=lead_id,
                raised_at=uow.now(),
            ),
        )
        if not new:
            return False
        filing.add_flag(kind)
        if lead_kind is not None and lead_id is not None:
            await self.raise_lead(
                uow, filing, lead_kind, lead_id, "；".join(reasons)[:2000], evidence
            )
        return True

    async def raise_lead(
        self,
        uow: UnitOfWork,
        filing: Filing,
        kind: LeadKind,
        lead_id: str,
        summary: str,
        evidence: dict[str, Any],
        subject: tuple[str, str] | None = None,
    ) -> None:
        """A 监督线索 against the filing's unit, about the filing unless ``subject`` (type, id)
        names something else (a unit-month)."""
        subject_type, subject_id = subject or ("filing", filing.id)
        await uow.raise_lead(
            SupervisionLead(
                lead_id=lead_id,
                kind=kind,
                district=filing.district,
                unit=filing.unit,
                subject_type=subject_type,
                subject_id=subject_id,
                summary=summary,
                evidence=to_jsonable_python(evidence),
                raised_at=uow.now(),
                raised_by=RAISED_BY,
            )
        )

    async def notify_unit(
        self,
        uow: UnitOfWork,
        filing: Filing,
        key: str,
        kind: NoticeKind,
        summary: str,
        context: dict[str, Any],
        deadline: dt.datetime | None = None,
    ) -> None:
        """Ask notify to send the filing's unit a notice about it (once per ``key``)."""
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=key,
                kind=kind,
                recipient_unit=filing.unit,
                district=filing.district,
                subject_type="filing",
                subject_id=filing.id,
                summary=summary,
                deadline=deadline,
                context=context,
                requested_by=RAISED_BY,
            )
        )
