"""Event, timer and command handlers of the penalty service: glue between events, the
domain rules and storage. Every change runs inside one unit of work (transaction), and every
timer, lead and notice id is derived from a business key, so a retry never doubles anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import structlog
from pydantic_core import to_jsonable_python

from services.penalty import storage
from services.penalty.domain.anomaly import (
    MonthTotal,
    Thresholds,
    assess_unit_month,
    month_of,
    trailing_months,
    unit_kind,
)
from services.penalty.domain.catalogue import Catalogue, cached_catalogue
from services.penalty.domain.filing import (
    REVIEW_STATUS,
    FilingDeadline,
    ReviewOutcome,
    assess_penalty,
    check_disproportion,
    days_late,
    filing_deadline,
    is_large,
    review_refusal,
)
from services.penalty.domain.records import Anomaly, Filing, Flag, Letter, LetterKind, Reply
from services.penalty.settings import PenaltySettings
from shared.aggregate import Aggregate
from shared.api import Conflict, NotFound
from shared.city import load_city, supervising_unit
from shared.clock import utc
from shared.contracts import (
    CaseDocument,
    LeadKind,
    NoticeKind,
    NotificationRequest,
    PenaltyDecided,
    PenaltyFiled,
    SupervisionLead,
    parse_data,
)
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.topics import PENALTY_EVENTS
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

log = structlog.get_logger(__name__)

EVENT_PREFIX = "jiandu.penalty.filing."
FILING_DUE = "penalty.filing_due"
REPLY_DUE = "penalty.reply_due"
RAISED_BY = "penalty"

LETTER_NOTICE: dict[LetterKind, NoticeKind] = {
    "acceptance": NoticeKind.SUPERVISION_NOTICE,
    "recommendation": NoticeKind.RECOMMENDATION,
    "decision": NoticeKind.DECISION,
}
LETTER_KIND: dict[ReviewOutcome, LetterKind] = {
    "accept": "acceptance",
    "recommendation": "recommendation",
    "decision": "decision",
}
LETTER_TITLE = {
    "acceptance": "顶格处罚备案审查通过通知",
    "recommendation": "行政执法监督建议书",
    "decision": "行政执法监督决定书",
}


def filing_due_timer(case_id: str) -> str:
    return f"penalty:filing-due:{case_id}"


def reply_due_timer(letter_id: str) -> str:
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


def end_of_day_after(when: dt.datetime, days: int) -> dt.datetime:
    """Close of the CST day ``days`` calendar days after ``when`` (reply deadlines)."""
    day = when.astimezone(CST).date() + dt.timedelta(days=days + 1)
    return dt.datetime.combine(day, dt.time(0), CST).astimezone(dt.UTC)


class PenaltyWorkflow:
    """The 顶格处罚备案 process for one service instance (stateless between calls)."""

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

    # ------------------------------------------------------------------ plumbing

    async def _emit(
        self, uow: UnitOfWork, filing: Filing, verb: str, change: dict[str, Any]
    ) -> None:
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

    async def _save(self, uow: UnitOfWork, filing: Filing) -> None:
        filing.refresh(uow.now())
        storage.filings(uow).put(filing)

    async def _flag(
        self,
        uow: UnitOfWork,
        filing: Filing,
        kind: str,
        reasons: list[str],
        evidence: dict[str, Any],
        lead_kind: LeadKind | None = None,
    ) -> bool:
        """Record a finding once; with ``lead_kind`` it also raises the 监督线索 (same id)."""
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
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=lead_id,
                    kind=lead_kind,
                    district=filing.district,
                    unit=filing.unit,
                    subject_type="filing",
                    subject_id=filing.id,
                    summary="；".join(reasons)[:2000],
                    evidence=to_jsonable_python(evidence),
                    raised_at=uow.now(),
                    raised_by=RAISED_BY,
                )
            )
        return True

    def _deadline(self, filing: Filing) -> FilingDeadline:
        return filing_deadline(
            utc(filing.decision_time),
            self.settings.filing_deadline_days,
            self.settings.filing_deadline_calendar,
            roll_over=self.settings.filing_deadline_roll_over,
        )

    # ------------------------------------------------------------------ penalty decided

    async def on_decided(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, PenaltyDecided)
        existing = await storage.filings(uow).get(data.case_id)
        if existing is not None and existing.decided:
            same = (
                existing.unit == data.unit
                and existing.provision == data.provision
                and abs(existing.fine_amount - data.fine) < 0.005
                and utc(existing.decision_time) == utc(data.decided_at)
            )
            if same:
                return  # the same decision again (new event id): nothing changes
            raise EventRejected(
                f"case {data.case_id} already has a decision "
                f"({existing.fine_amount:g} 元 under {existing.provision}); conflicting decision"
            )
        if existing is not None and existing.unit != data.unit:
            raise EventRejected(
                f"case {data.case_id} was filed by {existing.unit}, decided by {data.unit}"
            )
        assessment = assess_penalty(
            self.catalogue,
            data.provision,
            data.party_type,
            data.fine,
            self.settings.large_fine_thresholds,
            goods_value=data.goods_value,
            illegal_gains=data.illegal_gains,
            measures=data.measures,
            top_tier_measures=self.settings.top_tier_measures,
        )
        filing = existing or Filing(
            id=data.case_id, district=data.district, unit=data.unit, unit_kind=unit_kind(data.unit)
        )
        filing.decided = True
        filing.district = data.district
        filing.unit = data.unit
        filing.unit_kind = unit_kind(data.unit)
        filing.provision = data.provision
        filing.party_type = data.party_type
        filing.party_name = data.party_name
        filing.fine = data.fine
        filing.goods_value = data.goods_value
        filing.illegal_gains = data.illegal_gains
        filing.measures = list(data.measures)
        filing.decided_at = utc(data.decided_at)
        filing.month = month_of(utc(data.decided_at))
        filing.circumstances = list(data.circumstances)
        filing.catalogue_version = self.catalogue.version
        filing.decision_event_id = event.id
        filing.missing = False
        filing.assess(assessment)
        await self._emit(
            uow,
            filing,
            "decided",
            {"at": uow.now(), "event_id": event.id, "assessment": assessment.model_dump()},
        )
        if assessment.top_tier is None:
            await self._flag(
                uow,
                filing,
                "classification_needed",
                [assessment.reason],
                {"provision": data.provision, "party_type": data.party_type, "fine": data.fine},
            )
            await self._emit(
                uow,
                filing,
                "classification_needed",
                {"at": uow.now(), "reason": assessment.reason},
            )
        elif assessment.top_tier:
            await self._top_tier(uow, filing, assessment.reason, by="catalogue")
        await self._save(uow, filing)
        await self._recompute_anomaly(uow, filing)

    async def _top_tier(self, uow: UnitOfWork, filing: Filing, reason: str, by: str) -> None:
        """A top-tier penalty is established: deadline, disproportion, lateness or timer."""
        deadline = self._deadline(filing)
        filing.deadline_last_day = deadline.last_day.isoformat()
        filing.deadline_due = deadline.due
        await self._emit(
            uow,
            filing,
            "top_tier_detected",
            {
                "at": uow.now(),
                "by": by,
                "reason": reason,
                "large": filing.large,
                "deadline": deadline.model_dump(),
            },
        )
        if filing.large:
            await self._flag(
                uow,
                filing,
                "large_top_tier",
                [f"大额顶格罚款 {filing.fine_amount:g} 元（{filing.party_type}），优先审查"],
                {"fine": filing.fine, "party_type": filing.party_type},
            )
        finding = check_disproportion(
            True, filing.circumstances, self.settings.mitigating_circumstances
        )
        if finding is not None:
            filing.disproportion = finding
            if await self._flag(
                uow,
                filing,
                "disproportion",
                finding.reasons,
                {"fine": filing.fine, "provision": filing.provision, **finding.model_dump()},
                LeadKind.DISPROPORTION,
            ):
                await self._emit(
                    uow,
                    filing,
                    "disproportion_flagged",
                    {"at": uow.now(), **finding.model_dump()},
                )
        if filing.filed and filing.filed_at is not None:
            await self._check_late(uow, filing, filing.filed_at, deadline)
        else:
            await uow.schedule(
                filing_due_timer(filing.id),
                FILING_DUE,
                deadline.due,
                {"case_id": filing.id},
                subject=f"filing/{filing.id}",
            )

    async def _check_late(
        self, uow: UnitOfWork, filing: Filing, filed_at: dt.datetime, deadline: FilingDeadline
    ) -> None:
        late_by = days_late(utc(filed_at), deadline)
        filing.late = late_by > 0
        filing.days_late = late_by
        if late_by == 0:
            return
        reason = (
            f"顶格处罚于 {utc(filing.decision_time).astimezone(CST).date()} 作出，"
            f"应于 {deadline.last_day} 前备案，实际 {utc(filed_at).astimezone(CST).date()} "
            f"备案，逾期 {late_by} 日"
        )
        evidence = {
            "decided_at": filing.decided_at,
            "deadline_last_day": deadline.last_day,
            "filed_at": filed_at,
            "days_late": late_by,
        }
        if await self._flag(uow, filing, "late_filing", [reason], evidence, LeadKind.LATE_FILING):
            await self._emit(uow, filing, "late_filing", {"at": uow.now(), **evidence})

    # ------------------------------------------------------------------ filing

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
            await self._check_late(uow, filing, filing.filed_at, self._deadline(filing))
        await self._emit(
            uow,
            filing,
            "filed",
            {
                "at": uow.now(),
                "via": via,
                "filed_at": filing.filed_at,
                "documents": [d.model_dump(mode="json") for d in filing.documents],
                "late": filing.late,
                "days_late": filing.days_late,
            },
        )
        await self._save(uow, filing)
        return filing

    # ------------------------------------------------------------------ missing filing

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
            f"{utc(filing.decision_time).astimezone(CST).date()} 作出，"
            f"至 {last_day} 未报区司法局备案"
        )
        evidence = {"decided_at": filing.decided_at, "deadline_last_day": last_day}
        await self._flag(uow, filing, "missing_filing", [reason], evidence, LeadKind.MISSING_FILING)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"penalty:filing-reminder:{case_id}",
                kind=NoticeKind.FILING_REMINDER,
                recipient_unit=filing.unit,
                district=filing.district,
                subject_type="filing",
                subject_id=case_id,
                summary=f"{reason}，请立即报送备案材料。",
                context={
                    "case_id": case_id,
                    "provision": filing.provision,
                    "fine": filing.fine,
                    "deadline_last_day": last_day,
                    "bureau": supervising_unit(filing.unit),
                },
                requested_by=RAISED_BY,
            )
        )
        await self._emit(uow, filing, "missing_filing", {"at": uow.now(), **evidence})
        await self._save(uow, filing)

    # ------------------------------------------------------------------ manual classification

    async def classify(
        self, uow: UnitOfWork, case_id: str, top_tier: bool, by: str, note: str
    ) -> Filing:
        """A supervisor decides a penalty the catalogue could not judge."""
        filing = await storage.filings(uow).get(case_id)
        if filing is None:
            raise NotFound(f"no penalty decided for case {case_id}")
        if not filing.decided or filing.top_tier is not None:
            raise Conflict(f"case {case_id} needs no classification (status {filing.status})")
        filing.top_tier = top_tier
        filing.classification = "top_tier" if top_tier else "not_top_tier"
        filing.classified_by = by
        filing.classification_note = note
        filing.large = top_tier and is_large(
            filing.fine_amount, filing.party_type or "", self.settings.large_fine_thresholds
        )
        filing.priority_review = filing.large
        if top_tier:
            await self._top_tier(uow, filing, f"人工认定为顶格处罚：{note}", by=by)
        await self._save(uow, filing)
        return filing

    # ------------------------------------------------------------------ bureau review

    async def review(
        self, uow: UnitOfWork, case_id: str, outcome: ReviewOutcome, by: str, opinion: str
    ) -> tuple[Filing, Letter]:
        """备案审查结论: acceptance, 监督建议书 (reply due) or 监督决定书; each is a notice."""
        filing = await storage.filings(uow).get(case_id)
        if filing is None:
            raise NotFound(f"no filing for case {case_id}")
        refusal = review_refusal(filing.status, outcome)
        if refusal:
            raise Conflict(refusal)
        kind = LETTER_KIND[outcome]
        seq = await storage.count_letters(uow, case_id) + 1
        letter_id = f"{case_id}-L{seq}"
        now = uow.now()
        reply_due = (
            end_of_day_after(now, self.settings.recommendation_reply_days)
            if kind == "recommendation"
            else None
        )
        letter = Letter(
            id=letter_id,
            case_id=case_id,
            district=filing.district,
            unit=filing.unit,
            kind=kind,
            title=LETTER_TITLE[kind],
            issued_by=by,
            issued_at=now,
            opinion=opinion,
            reply_due=reply_due,
            status="awaiting_reply" if reply_due else "issued",
            reply=None,
        )
        storage.letters(uow).add(letter)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"penalty:letter:{letter_id}",
                kind=LETTER_NOTICE[kind],
                recipient_unit=filing.unit,
                district=filing.district,
                subject_type="filing",
                subject_id=case_id,
                summary=f"{LETTER_TITLE[kind]}（案件 {case_id}）：{opinion}"[:2000],
                deadline=reply_due,
                context={"letter_id": letter_id, "outcome": outcome, "issued_by": by},
                requested_by=RAISED_BY,
            )
        )
        if reply_due is not None:
            await uow.schedule(
                reply_due_timer(letter_id),
                REPLY_DUE,
                reply_due,
                {"letter_id": letter_id},
                subject=f"filing/{case_id}",
            )
        filing.review_status = REVIEW_STATUS[outcome]
        filing.letters.append(letter_id)
        await self._save(uow, filing)
        await self._emit(
            uow, filing, "letter_issued", {"at": now, "by": by, "letter": snapshot(letter)}
        )
        return filing, letter

    async def record_reply(
        self, uow: UnitOfWork, letter_id: str, by: str, content: str
    ) -> tuple[Filing, Letter]:
        """The unit answers a letter (回复); a late answer is recorded as late."""
        letter = await storage.letters(uow).get(letter_id)
        if letter is None:
            raise NotFound(f"no letter {letter_id}")
        if letter.kind == "acceptance":
            raise Conflict("an acceptance notice needs no reply")
        if letter.reply is not None:
            raise Conflict(f"letter {letter_id} already answered")
        filing = await storage.filings(uow).get(letter.case_id)
        if filing is None:
            raise NotFound(f"no filing for case {letter.case_id}")
        if by != letter.unit:
            raise Conflict(f"letter {letter_id} is addressed to {letter.unit}, not {by}")
        now = uow.now()
        due = letter.reply_due
        late = due is not None and now > utc(due)
        letter.reply = Reply(by=by, content=content, at=now, late=late)
        letter.status = "replied"
        storage.letters(uow).put(letter)
        await uow.cancel(reply_due_timer(letter_id))
        if letter.kind == "recommendation":
            filing.review_status = "replied"
        await self._save(uow, filing)
        await self._emit(
            uow, filing, "reply_recorded", {"at": now, "by": by, "letter": snapshot(letter)}
        )
        return filing, letter

    async def on_reply_due(self, timer: Document, uow: UnitOfWork) -> None:
        """A 监督建议书 left unanswered past its due date escalates (通报 + overdue lead)."""
        letter_id = timer["payload"]["letter_id"]
        letter = await storage.letters(uow).get(letter_id)
        if letter is None or letter.reply is not None or letter.status == "escalated":
            return
        if letter.reply_due is None:
            return  # only a letter with a reply due has this timer
        filing = await storage.filings(uow).get(letter.case_id)
        if filing is None:
            return
        now = uow.now()
        letter.status = "escalated"
        letter.escalated_at = now
        storage.letters(uow).put(letter)
        bureau = supervising_unit(filing.unit)
        above = supervising_unit(bureau) if bureau != filing.unit else bureau
        reason = (
            f"{filing.unit} 未在 {utc(letter.reply_due).astimezone(CST).date()} 前"
            f"回复监督建议书 {letter_id}（案件 {filing.id}）"
        )
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"penalty:escalation:{letter_id}",
                kind=NoticeKind.ESCALATION,
                recipient_unit=filing.unit,
                district=filing.district,
                subject_type="filing",
                subject_id=filing.id,
                summary=f"{reason}，予以通报。",
                context={"letter_id": letter_id, "copy_to": above},
                requested_by=RAISED_BY,
            )
        )
        await uow.raise_lead(
            SupervisionLead(
                lead_id=SupervisionLead.make_id(LeadKind.OVERDUE, letter_id),
                kind=LeadKind.OVERDUE,
                district=filing.district,
                unit=filing.unit,
                subject_type="filing",
                subject_id=filing.id,
                summary=reason,
                evidence={
                    "letter_id": letter_id,
                    "reply_due": to_jsonable_python(letter.reply_due),
                },
                raised_at=now,
                raised_by=RAISED_BY,
            )
        )
        if filing.review_status == "recommendation_issued":
            filing.review_status = "escalated"
        await self._save(uow, filing)
        await self._emit(
            uow,
            filing,
            "letter_issued",
            {"at": now, "by": RAISED_BY, "escalation": True, "letter": snapshot(letter)},
        )

    # ------------------------------------------------------------------ fine anomalies

    async def _recompute_anomaly(self, uow: UnitOfWork, filing: Filing) -> None:
        """Re-judge the unit-month this penalty falls in (aggregation inside the transaction)."""
        unit, month = filing.unit, filing.decision_month
        history_months = trailing_months(month, self.thresholds.history_months)
        totals = await storage.unit_month_totals(uow, unit, [*history_months, month])
        current = totals.pop(month, MonthTotal(total=0.0, count=0))
        peers = await storage.peer_totals(uow, filing.unit_kind, month, unit)
        assessment = assess_unit_month(unit, month, current, totals, peers, self.thresholds)
        anomaly_id = f"{unit}:{month}"
        previous = await storage.anomalies(uow).get(anomaly_id)
        record = Anomaly(
            id=anomaly_id,
            unit=unit,
            unit_kind=filing.unit_kind,
            district=filing.district,
            month=month,
            total=assessment.total,
            count=assessment.count,
            anomalous=assessment.anomalous,
            rules=assessment.rules,
            explanation=assessment.explanation,
            ever_anomalous=bool(previous and previous.ever_anomalous) or assessment.anomalous,
            lead_id=previous.lead_id if previous else None,
            detected_at=previous.detected_at if previous else None,
            updated_at=uow.now(),
        )
        if assessment.anomalous and record.lead_id is None:
            record.lead_id = SupervisionLead.make_id(LeadKind.FINE_ANOMALY, unit, month)
            record.detected_at = uow.now()
            triggered = [r.model_dump() for r in assessment.rules if r.triggered]
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=record.lead_id,
                    kind=LeadKind.FINE_ANOMALY,
                    district=filing.district,
                    unit=unit,
                    subject_type="unit_month",
                    subject_id=anomaly_id,
                    summary=assessment.explanation[:2000],
                    evidence={"assessment": assessment.model_dump(), "triggered": triggered},
                    raised_at=uow.now(),
                    raised_by=RAISED_BY,
                )
            )
            await self._emit(
                uow,
                filing,
                "anomaly_detected",
                {"at": uow.now(), "anomaly_id": anomaly_id, "assessment": assessment.model_dump()},
            )
        storage.anomalies(uow).put(record)
