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
    TopTierAssessment,
    assess_penalty,
    check_disproportion,
    days_late,
    derive_status,
    filing_deadline,
    is_large,
    review_refusal,
)
from services.penalty.settings import PenaltySettings
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

LETTER_NOTICE: dict[str, NoticeKind] = {
    "acceptance": NoticeKind.SUPERVISION_NOTICE,
    "recommendation": NoticeKind.RECOMMENDATION,
    "decision": NoticeKind.DECISION,
}
LETTER_KIND: dict[ReviewOutcome, str] = {
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


def snapshot(doc: Document) -> dict[str, Any]:
    """The entity as events carry it: ``id`` instead of ``_id``, JSON values only.

    A private person's name is reduced to its first character (the decision itself is
    public, the person's name need not travel on every topic).
    """
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

    def __init__(self, settings: PenaltySettings, source: str) -> None:
        self.settings = settings
        self.source = source
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
        self, uow: UnitOfWork, doc: Document, verb: str, change: dict[str, Any]
    ) -> None:
        self._refresh(uow, doc)
        event = Envelope(
            type=EVENT_PREFIX + verb,
            source=self.source,
            subject=f"filing/{doc['_id']}",
            district=doc["district"],
            partitionkey=doc["_id"],
            time=uow.now(),
            data={"filing": snapshot(doc), "change": to_jsonable_python(change)},
        )
        await uow.emit(event, PENALTY_EVENTS)

    async def _save(self, uow: UnitOfWork, doc: Document) -> None:
        self._refresh(uow, doc)
        uow.documents(storage.FILINGS).put(doc)

    @staticmethod
    def _refresh(uow: UnitOfWork, doc: Document) -> None:
        doc["status"] = derive_status(
            decided=bool(doc.get("decided")),
            top_tier=doc.get("top_tier"),
            filed=bool(doc.get("filed")),
            missing=bool(doc.get("missing")),
            review_status=doc.get("review_status"),
        )
        doc["updated_at"] = uow.now()

    async def _flag(
        self,
        uow: UnitOfWork,
        doc: Document,
        kind: str,
        reasons: list[str],
        evidence: dict[str, Any],
        lead_kind: LeadKind | None = None,
    ) -> bool:
        """Record a finding once; with ``lead_kind`` it also raises the 监督线索 (same id)."""
        lead_id = SupervisionLead.make_id(lead_kind, doc["_id"]) if lead_kind else None
        new = await storage.add_flag(
            uow,
            {
                "_id": f"{kind}:{doc['_id']}",
                "kind": kind,
                "case_id": doc["_id"],
                "district": doc["district"],
                "unit": doc["unit"],
                "reasons": reasons,
                "evidence": to_jsonable_python(evidence),
                "lead_id": lead_id,
                "raised_at": uow.now(),
            },
        )
        if not new:
            return False
        flags = list(doc.get("flags") or [])
        if kind not in flags:
            doc["flags"] = [*flags, kind]
        if lead_kind is not None and lead_id is not None:
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=lead_id,
                    kind=lead_kind,
                    district=doc["district"],
                    unit=doc["unit"],
                    subject_type="filing",
                    subject_id=doc["_id"],
                    summary="；".join(reasons)[:2000],
                    evidence=to_jsonable_python(evidence),
                    raised_at=uow.now(),
                    raised_by=RAISED_BY,
                )
            )
        return True

    def _deadline(self, doc: Document) -> FilingDeadline:
        return filing_deadline(
            utc(doc["decided_at"]),
            self.settings.filing_deadline_days,
            self.settings.filing_deadline_calendar,
            roll_over=self.settings.filing_deadline_roll_over,
        )

    # ------------------------------------------------------------------ penalty decided

    async def on_decided(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, PenaltyDecided)
        existing = await uow.documents(storage.FILINGS).get(data.case_id)
        if existing is not None and existing.get("decided"):
            same = (
                existing["unit"] == data.unit
                and existing["provision"] == data.provision
                and abs(float(existing["fine"]) - data.fine) < 0.005
                and utc(existing["decided_at"]) == utc(data.decided_at)
            )
            if same:
                return  # the same decision again (new event id): nothing changes
            raise EventRejected(
                f"case {data.case_id} already has a decision "
                f"({existing['fine']:g} 元 under {existing['provision']}); conflicting decision"
            )
        if existing is not None and existing["unit"] != data.unit:
            raise EventRejected(
                f"case {data.case_id} was filed by {existing['unit']}, decided by {data.unit}"
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
        doc: Document = existing or {"_id": data.case_id, "filed": False, "flags": []}
        doc.update(
            decided=True,
            district=data.district,
            unit=data.unit,
            unit_kind=unit_kind(data.unit),
            provision=data.provision,
            party_type=data.party_type,
            party_name=data.party_name,
            fine=data.fine,
            goods_value=data.goods_value,
            illegal_gains=data.illegal_gains,
            measures=list(data.measures),
            decided_at=utc(data.decided_at),
            month=month_of(utc(data.decided_at)),
            circumstances=list(data.circumstances),
            catalogue_version=self.catalogue.version,
            decision_event_id=event.id,
            missing=False,
            **self._assessment_fields(assessment),
        )
        await self._emit(
            uow,
            doc,
            "decided",
            {"at": uow.now(), "event_id": event.id, "assessment": assessment.model_dump()},
        )
        if assessment.top_tier is None:
            await self._flag(
                uow,
                doc,
                "classification_needed",
                [assessment.reason],
                {"provision": data.provision, "party_type": data.party_type, "fine": data.fine},
            )
            await self._emit(
                uow, doc, "classification_needed", {"at": uow.now(), "reason": assessment.reason}
            )
        elif assessment.top_tier:
            await self._top_tier(uow, doc, assessment.reason, by="catalogue")
        await self._save(uow, doc)
        await self._recompute_anomaly(uow, doc)

    @staticmethod
    def _assessment_fields(a: TopTierAssessment) -> dict[str, Any]:
        return {
            "classification": a.classification,
            "classification_reason": a.reason,
            "top_tier": a.top_tier,
            "provision_id": a.provision_id,
            "domain": a.domain,
            "range_min": a.range_min,
            "range_max": a.range_max,
            "range_kind": a.range_kind,
            "basis": a.basis,
            "basis_value": a.basis_value,
            "top_tier_measures": a.top_tier_measures,
            "measures_not_provided": a.measures_not_provided,
            "band": a.band,
            "band_label": a.band_label,
            "above_range": a.above_range,
            "large": a.large,
            "priority_review": a.large,
        }

    async def _top_tier(self, uow: UnitOfWork, doc: Document, reason: str, by: str) -> None:
        """A top-tier penalty is established: deadline, disproportion, lateness or timer."""
        deadline = self._deadline(doc)
        doc["deadline_last_day"] = deadline.last_day.isoformat()
        doc["deadline_due"] = deadline.due
        await self._emit(
            uow,
            doc,
            "top_tier_detected",
            {
                "at": uow.now(),
                "by": by,
                "reason": reason,
                "large": doc.get("large", False),
                "deadline": deadline.model_dump(),
            },
        )
        if doc.get("large"):
            await self._flag(
                uow,
                doc,
                "large_top_tier",
                [f"大额顶格罚款 {doc['fine']:g} 元（{doc['party_type']}），优先审查"],
                {"fine": doc["fine"], "party_type": doc["party_type"]},
            )
        finding = check_disproportion(
            True, doc.get("circumstances", []), self.settings.mitigating_circumstances
        )
        if finding is not None:
            doc["disproportion"] = finding.model_dump()
            if await self._flag(
                uow,
                doc,
                "disproportion",
                finding.reasons,
                {"fine": doc["fine"], "provision": doc["provision"], **finding.model_dump()},
                LeadKind.DISPROPORTION,
            ):
                await self._emit(
                    uow, doc, "disproportion_flagged", {"at": uow.now(), **finding.model_dump()}
                )
        if doc.get("filed"):
            await self._check_late(uow, doc, deadline)
        else:
            await uow.schedule(
                filing_due_timer(doc["_id"]),
                FILING_DUE,
                deadline.due,
                {"case_id": doc["_id"]},
                subject=f"filing/{doc['_id']}",
            )

    async def _check_late(self, uow: UnitOfWork, doc: Document, deadline: FilingDeadline) -> None:
        late_by = days_late(utc(doc["filed_at"]), deadline)
        doc["late"] = late_by > 0
        doc["days_late"] = late_by
        if late_by == 0:
            return
        reason = (
            f"顶格处罚于 {utc(doc['decided_at']).astimezone(CST).date()} 作出，"
            f"应于 {deadline.last_day} 前备案，实际 {utc(doc['filed_at']).astimezone(CST).date()} "
            f"备案，逾期 {late_by} 日"
        )
        evidence = {
            "decided_at": doc["decided_at"],
            "deadline_last_day": deadline.last_day,
            "filed_at": doc["filed_at"],
            "days_late": late_by,
        }
        if await self._flag(uow, doc, "late_filing", [reason], evidence, LeadKind.LATE_FILING):
            await self._emit(uow, doc, "late_filing", {"at": uow.now(), **evidence})

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
    ) -> Document:
        """备案: record the filing; late against the deadline when the decision is known."""
        doc = await uow.documents(storage.FILINGS).get(case_id)
        if doc is not None and doc.get("filed"):
            raise Conflict(f"case {case_id} already filed at {utc(doc['filed_at']).isoformat()}")
        if doc is not None and doc["unit"] != unit:
            raise Conflict(f"case {case_id} belongs to {doc['unit']}, not {unit}")
        if doc is None:
            district = district or load_city().district_of_unit(unit)
            if district is None:
                raise Conflict(f"unknown unit {unit!r}: cannot tell its district")
            doc = {
                "_id": case_id,
                "decided": False,
                "district": district,
                "unit": unit,
                "unit_kind": unit_kind(unit),
                "top_tier": None,
                "flags": [],
            }
        doc.update(
            filed=True,
            filed_at=utc(filed_at),
            filed_via=via,
            documents=[d.model_dump(mode="json") for d in documents],
        )
        if doc.get("decided") and doc.get("top_tier"):
            await uow.cancel(filing_due_timer(case_id))
            await self._check_late(uow, doc, self._deadline(doc))
        await self._emit(
            uow,
            doc,
            "filed",
            {
                "at": uow.now(),
                "via": via,
                "filed_at": doc["filed_at"],
                "documents": doc["documents"],
                "late": doc.get("late"),
                "days_late": doc.get("days_late"),
            },
        )
        await self._save(uow, doc)
        return doc

    # ------------------------------------------------------------------ missing filing

    async def on_filing_due(self, timer: Document, uow: UnitOfWork) -> None:
        """The deadline passed: a top-tier penalty still unfiled is a missing filing."""
        case_id = timer["payload"]["case_id"]
        doc = await uow.documents(storage.FILINGS).get(case_id)
        if doc is None or doc.get("filed") or doc.get("missing") or not doc.get("top_tier"):
            return
        doc["missing"] = True
        doc["missing_at"] = uow.now()
        last_day = doc["deadline_last_day"]
        reason = (
            f"顶格处罚（{doc['provision']}，罚款 {doc['fine']:g} 元）于 "
            f"{utc(doc['decided_at']).astimezone(CST).date()} 作出，至 {last_day} 未报区司法局备案"
        )
        evidence = {"decided_at": doc["decided_at"], "deadline_last_day": last_day}
        await self._flag(uow, doc, "missing_filing", [reason], evidence, LeadKind.MISSING_FILING)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"penalty:filing-reminder:{case_id}",
                kind=NoticeKind.FILING_REMINDER,
                recipient_unit=doc["unit"],
                district=doc["district"],
                subject_type="filing",
                subject_id=case_id,
                summary=f"{reason}，请立即报送备案材料。",
                context={
                    "case_id": case_id,
                    "provision": doc["provision"],
                    "fine": doc["fine"],
                    "deadline_last_day": last_day,
                    "bureau": supervising_unit(doc["unit"]),
                },
                requested_by=RAISED_BY,
            )
        )
        await self._emit(uow, doc, "missing_filing", {"at": uow.now(), **evidence})
        await self._save(uow, doc)

    # ------------------------------------------------------------------ manual classification

    async def classify(
        self, uow: UnitOfWork, case_id: str, top_tier: bool, by: str, note: str
    ) -> Document:
        """A supervisor decides a penalty the catalogue could not judge."""
        doc = await uow.documents(storage.FILINGS).get(case_id)
        if doc is None:
            raise NotFound(f"no penalty decided for case {case_id}")
        if not doc.get("decided") or doc.get("top_tier") is not None:
            raise Conflict(f"case {case_id} needs no classification (status {doc['status']})")
        doc.update(
            top_tier=top_tier,
            classification="top_tier" if top_tier else "not_top_tier",
            classified_by=by,
            classification_note=note,
            large=top_tier
            and is_large(
                float(doc["fine"]), doc["party_type"], self.settings.large_fine_thresholds
            ),
        )
        doc["priority_review"] = doc["large"]
        if top_tier:
            await self._top_tier(uow, doc, f"人工认定为顶格处罚：{note}", by=by)
        await self._save(uow, doc)
        return doc

    # ------------------------------------------------------------------ bureau review

    async def review(
        self, uow: UnitOfWork, case_id: str, outcome: ReviewOutcome, by: str, opinion: str
    ) -> tuple[Document, Document]:
        """备案审查结论: acceptance, 监督建议书 (reply due) or 监督决定书; each is a notice."""
        doc = await uow.documents(storage.FILINGS).get(case_id)
        if doc is None:
            raise NotFound(f"no filing for case {case_id}")
        refusal = review_refusal(doc["status"], outcome)
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
        letter: Document = {
            "_id": letter_id,
            "case_id": case_id,
            "district": doc["district"],
            "unit": doc["unit"],
            "kind": kind,
            "title": LETTER_TITLE[kind],
            "issued_by": by,
            "issued_at": now,
            "opinion": opinion,
            "reply_due": reply_due,
            "status": "awaiting_reply" if reply_due else "issued",
            "reply": None,
        }
        uow.documents(storage.LETTERS).add(letter)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"penalty:letter:{letter_id}",
                kind=LETTER_NOTICE[kind],
                recipient_unit=doc["unit"],
                district=doc["district"],
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
        doc["review_status"] = REVIEW_STATUS[outcome]
        doc["letters"] = [*(doc.get("letters") or []), letter_id]
        await self._save(uow, doc)
        await self._emit(
            uow, doc, "letter_issued", {"at": now, "by": by, "letter": snapshot(letter)}
        )
        return doc, letter

    async def record_reply(
        self, uow: UnitOfWork, letter_id: str, by: str, content: str
    ) -> tuple[Document, Document]:
        """The unit answers a letter (回复); a late answer is recorded as late."""
        letter = await uow.documents(storage.LETTERS).get(letter_id)
        if letter is None:
            raise NotFound(f"no letter {letter_id}")
        if letter["kind"] == "acceptance":
            raise Conflict("an acceptance notice needs no reply")
        if letter.get("reply"):
            raise Conflict(f"letter {letter_id} already answered")
        doc = await uow.documents(storage.FILINGS).get(letter["case_id"])
        if doc is None:
            raise NotFound(f"no filing for case {letter['case_id']}")
        if by != letter["unit"]:
            raise Conflict(f"letter {letter_id} is addressed to {letter['unit']}, not {by}")
        now = uow.now()
        due = letter.get("reply_due")
        late = due is not None and now > utc(due)
        letter["reply"] = {"by": by, "content": content, "at": now, "late": late}
        letter["status"] = "replied"
        uow.documents(storage.LETTERS).put(letter)
        await uow.cancel(reply_due_timer(letter_id))
        if letter["kind"] == "recommendation":
            doc["review_status"] = "replied"
        await self._save(uow, doc)
        await self._emit(
            uow, doc, "reply_recorded", {"at": now, "by": by, "letter": snapshot(letter)}
        )
        return doc, letter

    async def on_reply_due(self, timer: Document, uow: UnitOfWork) -> None:
        """A 监督建议书 left unanswered past its due date escalates (通报 + overdue lead)."""
        letter_id = timer["payload"]["letter_id"]
        letter = await uow.documents(storage.LETTERS).get(letter_id)
        if letter is None or letter.get("reply") or letter["status"] == "escalated":
            return
        doc = await uow.documents(storage.FILINGS).get(letter["case_id"])
        if doc is None:
            return
        now = uow.now()
        letter["status"] = "escalated"
        letter["escalated_at"] = now
        uow.documents(storage.LETTERS).put(letter)
        bureau = supervising_unit(doc["unit"])
        above = supervising_unit(bureau) if bureau != doc["unit"] else bureau
        reason = (
            f"{doc['unit']} 未在 {utc(letter['reply_due']).astimezone(CST).date()} 前"
            f"回复监督建议书 {letter_id}（案件 {doc['_id']}）"
        )
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"penalty:escalation:{letter_id}",
                kind=NoticeKind.ESCALATION,
                recipient_unit=doc["unit"],
                district=doc["district"],
                subject_type="filing",
                subject_id=doc["_id"],
                summary=f"{reason}，予以通报。",
                context={"letter_id": letter_id, "copy_to": above},
                requested_by=RAISED_BY,
            )
        )
        await uow.raise_lead(
            SupervisionLead(
                lead_id=SupervisionLead.make_id(LeadKind.OVERDUE, letter_id),
                kind=LeadKind.OVERDUE,
                district=doc["district"],
                unit=doc["unit"],
                subject_type="filing",
                subject_id=doc["_id"],
                summary=reason,
                evidence={
                    "letter_id": letter_id,
                    "reply_due": to_jsonable_python(letter["reply_due"]),
                },
                raised_at=now,
                raised_by=RAISED_BY,
            )
        )
        if doc.get("review_status") == "recommendation_issued":
            doc["review_status"] = "escalated"
        await self._save(uow, doc)
        await self._emit(
            uow,
            doc,
            "letter_issued",
            {"at": now, "by": RAISED_BY, "escalation": True, "letter": snapshot(letter)},
        )

    # ------------------------------------------------------------------ fine anomalies

    async def _recompute_anomaly(self, uow: UnitOfWork, doc: Document) -> None:
        """Re-judge the unit-month this penalty falls in (aggregation inside the transaction)."""
        unit, month = doc["unit"], doc["month"]
        history_months = trailing_months(month, self.thresholds.history_months)
        totals = await storage.unit_month_totals(uow, unit, [*history_months, month])
        current = totals.pop(month, MonthTotal(total=0.0, count=0))
        peers = await storage.peer_totals(uow, doc["unit_kind"], month, unit)
        assessment = assess_unit_month(unit, month, current, totals, peers, self.thresholds)
        anomaly_id = f"{unit}:{month}"
        previous = await uow.documents(storage.ANOMALIES).get(anomaly_id)
        lead_id = previous.get("lead_id") if previous else None
        record: Document = {
            "_id": anomaly_id,
            "unit": unit,
            "unit_kind": doc["unit_kind"],
            "district": doc["district"],
            "month": month,
            **assessment.model_dump(exclude={"unit", "month"}),
            "ever_anomalous": bool(previous and previous.get("ever_anomalous"))
            or assessment.anomalous,
            "lead_id": lead_id,
            "detected_at": previous.get("detected_at") if previous else None,
            "updated_at": uow.now(),
        }
        if assessment.anomalous and lead_id is None:
            record["lead_id"] = SupervisionLead.make_id(LeadKind.FINE_ANOMALY, unit, month)
            record["detected_at"] = uow.now()
            triggered = [r.model_dump() for r in assessment.rules if r.triggered]
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=record["lead_id"],
                    kind=LeadKind.FINE_ANOMALY,
                    district=doc["district"],
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
                doc,
                "anomaly_detected",
                {"at": uow.now(), "anomaly_id": anomaly_id, "assessment": assessment.model_dump()},
            )
        uow.documents(storage.ANOMALIES).put(record)
