"""备案: a unit files its top-tier penalty (by event or over the API); a filing after the
deadline is late (逾期备案), a deadline passed without one is a missing filing (未备案): each is
a finding and a 监督线索, and a missing filing also sends the unit a reminder.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from services.penalty import storage
from services.penalty.domain.anomaly import unit_kind
from services.penalty.domain.filing import FilingDeadline, days_late
from services.penalty.domain.records import Filing
from services.penalty.handlers.steps import FilingSteps, filing_due_timer
from shared.api import Conflict, Invalid
from shared.city import load_city, supervising_unit
from shared.clock import utc
from shared.contracts import CaseDocument, LeadKind, NoticeKind, PenaltyFiled, parse_data
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

FUTURE_SLACK = dt.timedelta(minutes=5)
"""How far ahead of our clock a unit's ``filed_at`` may be (its clock may run fast)."""


def cst_date(when: dt.datetime) -> dt.date:
    """The day (CST) an instant falls on, as the bureaus write it."""
    return utc(when).astimezone(CST).date()


class Filings(FilingSteps):
    """备案 and its lateness; the missing-filing timer."""

    async def on_filed(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, PenaltyFiled)
        try:
            await self.record_filing(
                uow,
                case_id=data.case_id,
                unit=data.unit,
                district=event.district,
                filed_at=data.filed_at,
                documents=data.documents,
                via="event",
            )
        except Conflict as exc:
            if "already filed" in str(exc):
                return  # the same filing again: nothing changes
            raise EventRejected(str(exc)) from exc

    async def file(
        self,
        uow: UnitOfWork,
        *,
        case_id: str,
        unit: str,
        district: str | None,
        filed_at: dt.datetime | None,
        documents: list[CaseDocument],
    ) -> Filing:
        """备案 over the API: ``filed_at`` defaults to now and may not lie in the future."""
        now = uow.now()
        when = utc(filed_at) if filed_at else now
        if when > now + FUTURE_SLACK:
            raise Invalid("filed_at is in the future")
        return await self.record_filing(
            uow,
            case_id=case_id,
            unit=unit,
            district=district,
            filed_at=when,
            documents=documents,
            via="api",
        )

    async def record_filing(
        self,
        uow: UnitOfWork,
        *,
        case_id: str,
        unit: str,
        district: str | None,
        filed_at: dt.datetime,
        documents: list[CaseDocument],
        via: Literal["event", "api"],
    ) -> Filing:
        """备案: record the filing; late against the deadline when the decision is known."""
        filing = await storage.filings(uow).get(case_id)
        if filing is not None and filing.filed:
            when = utc(filing.filed_at).isoformat() if filing.filed_at else "an unknown time"
            raise Conflict(f"case {case_id} already filed at {when}")
        if filing is not None and filing.unit != unit:
            raise Conflict(f"case {case_id} belongs to {filing.unit}, not {unit}")
        if filing is None:
            district = district or load_city().district_of_unit(unit)
            if district is None:
                raise Conflict(f"unknown unit {unit!r}: cannot tell its district")
            filing = Filing(id=case_id, district=district, unit=unit, unit_kind=unit_kind(unit))
        filing.filed = True
        filing.filed_at = utc(filed_at)
        filing.filed_via = via
        filing.documents = list(documents)
        if filing.decided and filing.top_tier:
            await uow.cancel(filing_due_timer(case_id))
            await self.check_late(uow, filing, filing.filed_at, self.deadline(filing))
        await self.emit(
            uow,
            filing,
            "filed",
            {
                "at": uow.now(),
                "via": via,
                "filed_at": filing.filed_at,
                "documents": [document.model_dump(mode="json") for document in filing.documents],
                "late": filing.late,
                "days_late": filing.days_late,
            },
        )
        self.save(uow, filing)
        return filing

    async def check_late(
        self, uow: UnitOfWork, filing: Filing, filed_at: dt.datetime, deadline: FilingDeadline
    ) -> None:
        """逾期备案: a filing after the last on-time day is flagged with the days it is late."""
        late_by = days_late(utc(filed_at), deadline)
        filing.late = late_by > 0
        filing.days_late = late_by
        if late_by == 0:
            return
        reason = (
            f"顶格处罚于 {cst_date(filing.decision_time)} 作出，"
            f"应于 {deadline.last_day} 前备案，实际 {cst_date(filed_at)} "
            f"备案，逾期 {late_by} 日"
        )
        evidence = {
            "decided_at": filing.decided_at,
            "deadline_last_day": deadline.last_day,
            "filed_at": filed_at,
            "days_late": late_by,
        }
        if await self.flag(uow, filing, "late_filing", [reason], evidence, LeadKind.LATE_FILING):
            await self.emit(uow, filing, "late_filing", {"at": uow.now(), **evidence})

    async def on_filing_due(self, timer: Document, uow: UnitOfWork) -> None:
        """The deadline passed: a top-tier penalty still unfiled is a missing filing."""
        case_id = timer["payload"]["case_id"]
        filing = await storage.filings(uow).get(case_id)
        if filing is None or filing.filed or filing.missing or not filing.top_tier:
            return
        filing.missing = True
        filing.missing_at = uow.now()
        last_day = filing.deadline_last_day
        reason = (
            f"顶格处罚（{filing.provision}，罚款 {filing.fine_amount:g} 元）于 "
            f"{cst_date(filing.decision_time)} 作出，"
            f"至 {last_day} 未报区司法局备案"
        )
        evidence = {"decided_at": filing.decided_at, "deadline_last_day": last_day}
        await self.flag(uow, filing, "missing_filing", [reason], evidence, LeadKind.MISSING_FILING)
        await self.notify_unit(
            uow,
            filing,
            f"penalty:filing-reminder:{case_id}",
            NoticeKind.FILING_REMINDER,
            f"{reason}，请立即报送备案材料。",
            {
                "case_id": case_id,
                "provision": filing.provision,
                "fine": filing.fine,
                "deadline_last_day": last_day,
                "bureau": supervising_unit(filing.unit),
            },
        )
        await self.emit(uow, filing, "missing_filing", {"at": uow.now(), **evidence})
        self.save(uow, filing)
