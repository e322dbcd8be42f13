"""Event handlers of the inspection service: glue between events, the rules and storage.

Every change runs inside one unit of work (transaction); every flag, lead and notice id is
derived from a business key, so a redelivered or resent event never doubles anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from pydantic_core import to_jsonable_python

from services.inspection import storage
from services.inspection.domain.rules import (
    CertificateFinding,
    RateAssessment,
    RepeatThresholds,
    certification_rate,
    check_code,
    check_officer,
    check_plan,
    check_repeats,
    correction_rate,
    crossed,
    window_bucket,
)
from services.inspection.settings import InspectionSettings
from shared.city import supervising_unit
from shared.clock import utc
from shared.contracts import (
    InspectionConducted,
    InspectionPlanned,
    LeadKind,
    NoticeKind,
    NotificationRequest,
    OfficerCertified,
    OfficerRevoked,
    OfficerSuspended,
    ReviewDecided,
    SupervisionLead,
    parse_data,
)
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.topics import INSPECTION_EVENTS
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

log = structlog.get_logger(__name__)

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

METRIC_LEADS: dict[str, LeadKind] = {
    "certification": LeadKind.LOW_CERTIFICATION_RATE,
    "correction": LeadKind.HIGH_CORRECTION_RATE,
}
METRIC_LABELS = {"certification": "持证率", "correction": "被纠错率"}


def snapshot(doc: Document) -> dict[str, Any]:
    """The entity as events carry it: ``id`` instead of ``_id``, JSON values only."""
    return {"id": doc["_id"], **to_jsonable_python({k: v for k, v in doc.items() if k != "_id"})}


def officer_snapshot(doc: Document) -> dict[str, Any]:
    """What ``officer.changed`` carries: the registry entry (no personal name)."""
    return snapshot({k: v for k, v in doc.items() if k != "name"})


def cst_day(when: dt.datetime) -> dt.date:
    return utc(when).astimezone(CST).date()


class InspectionWorkflow:
    """Supervision of inspections, officers and corrections (stateless between calls)."""

    def __init__(self, settings: InspectionSettings) -> None:
        self.settings = settings
        self.repeats = RepeatThresholds(
            window_days=settings.repeat_window_days,
            max_units=settings.repeat_max_units,
            max_visits=settings.repeat_max_visits,
        )

    # ------------------------------------------------------------------ plumbing

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

    def _reply_due(self, uow: UnitOfWork) -> dt.datetime:
        day = cst_day(uow.now()) + dt.timedelta(days=self.settings.notice_reply_days + 1)
        return dt.datetime.combine(day, dt.time(0), CST).astimezone(dt.UTC)

    # ------------------------------------------------------------------ plans

    async def on_planned(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, InspectionPlanned)
        existing = await storage.get(uow, storage.PLANS, data.plan_id)
        if existing is not None and existing["unit"] != data.unit:
            raise EventRejected(
                f"plan {data.plan_id} was filed by {existing['unit']}, not {data.unit}"
            )
        doc: Document = {
            "_id": data.plan_id,
            "unit": data.unit,
            "district": data.district,
            "period_start": data.period_start.isoformat(),
            "period_end": data.period_end.isoformat(),
            "enterprises": sorted(set(data.enterprises)),
            "sectors": sorted(set(data.sectors)),
            "double_random": data.double_random,
            "filed_at": utc(data.filed_at),
        }
        if existing is not None and {k: existing.get(k) for k in doc} == doc:
            return  # the same plan again (new event id): nothing changes
        doc["revision"] = int(existing.get("revision", 0)) + 1 if existing else 1
        doc["status"] = "filed"
        doc["updated_at"] = uow.now()
        storage.put(uow, storage.PLANS, doc)
        await self._emit(uow, "plan", "filed", doc, {"at": uow.now(), "event_id": event.id})

    # ------------------------------------------------------------------ inspections

    async def on_conducted(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, InspectionConducted)
        existing = await storage.get(uow, storage.INSPECTIONS, data.inspection_id)
        if existing is not None:
            if (
                existing["unit"] == data.unit
                and existing["enterprise"] == data.enterprise
                and utc(existing["at"]) == utc(data.at)
            ):
                return  # the same inspection again (new event id): nothing changes
            raise EventRejected(
                f"inspection {data.inspection_id} already recorded for {existing['unit']} at "
                f"{existing['enterprise']}; conflicting report"
            )
        at = utc(data.at)
        day = cst_day(at)
        doc: Document = {
            "_id": data.inspection_id,
            "district": data.district,
            "unit": data.unit,
            "enterprise": data.enterprise,
            "enterprise_name": data.enterprise_name,
            "sector": data.sector,
            "at": at,
            "day": day.isoformat(),
            "code_scanned": data.code_scanned,
            "joint_id": data.joint_id,
            "plan_id": data.plan_id,
            "result": data.result,
            "officers": [o.model_dump(mode="json") for o in data.officers],
            "flags": [],
            "recorded_at": uow.now(),
        }
        reasons: list[str] = []

        plans = await storage.plans_of_unit(uow, data.unit)
        plan_finding = check_plan(data.unit, data.enterprise, data.sector, at, plans, data.plan_id)
        doc["planned"] = plan_finding is None

        async def flag(kind: LeadKind, reason: str, summary: str, evidence: Document) -> None:
            """One finding on this inspection: flagged on it and raised as a lead."""
            doc["flags"].append(kind.value)
            reasons.append(reason)
            await self._finding(
                uow,
                kind,
                data.inspection_id,
                district=data.district,
                unit=data.unit,
                subject_type="inspection",
                subject_id=data.inspection_id,
                summary=summary,
                evidence={"enterprise": data.enterprise, "at": at, **evidence},
                inspection_id=data.inspection_id,
            )

        if plan_finding is not None:
            await flag(
                LeadKind.UNPLANNED_INSPECTION,
                plan_finding.reason,
                f"未备案检查：{plan_finding.reason}",
                plan_finding.model_dump(),
            )

        code_reason = check_code(data.code_scanned)
        if code_reason is not None:
            await flag(
                LeadKind.CODE_NOT_SHOWN,
                code_reason,
                f"未亮码：{data.unit} 对 {data.enterprise} 的检查{code_reason}",
                {},
            )

        cert_findings = await self._check_officers(uow, data, day)
        if cert_findings:
            doc["flags"].append(LeadKind.UNCERTIFIED_OFFICER.value)
            reasons.extend(f.reason for f in cert_findings)
            await self._finding(
                uow,
                LeadKind.UNCERTIFIED_OFFICER,
                data.inspection_id,
                district=data.district,
                unit=data.unit,
                subject_type="inspection",
                subject_id=data.inspection_id,
                summary="无证执法：" + "；".join(f.reason for f in cert_findings),
                evidence={"officers": [f.model_dump() for f in cert_findings], "day": day},
                inspection_id=data.inspection_id,
            )
        doc["uncertified_officers"] = [f.officer_id for f in cert_findings]
        doc["status"] = "flagged" if doc["flags"] else "clean"
        doc["updated_at"] = uow.now()
        storage.put(uow, storage.INSPECTIONS, doc)

        visits = await storage.visits_of(
            uow, data.district, data.enterprise, at - dt.timedelta(days=self.repeats.window_days)
        )
        repeat = check_repeats(data.enterprise, at, visits, self.repeats)
        if repeat is not None:
            bucket = window_bucket(at, self.repeats.window_days)
            key = f"{data.district}:{data.enterprise}:{bucket}"
            if await self._finding(
                uow,
                LeadKind.REPEATED_INSPECTION,
                key,
                district=data.district,
                unit=data.unit,
                subject_type="enterprise",
                subject_id=data.enterprise,
                summary=repeat.reason,
                evidence={**repeat.model_dump(), "inspection_id": data.inspection_id},
                inspection_id=data.inspection_id,
            ):
                await self._emit(
                    uow, "inspection", "repeated", doc, {"at": uow.now(), **repeat.model_dump()}
                )

        if reasons:
            await uow.request_notice(
                NotificationRequest(
                    idempotency_key=f"inspection:notice:{data.inspection_id}",
                    kind=NoticeKind.SUPERVISION_NOTICE,
                    recipient_unit=data.unit,
                    district=data.district,
                    subject_type="inspection",
                    subject_id=data.inspection_id,
                    summary=f"{day} 对企业 {data.enterprise} 的行政检查存在问题："
                    + "；".join(reasons),
                    deadline=self._reply_due(uow),
                    context={
                        "inspection_id": data.inspection_id,
                        "enterprise": data.enterprise,
                        "findings": list(doc["flags"]),
                        "bureau": supervising_unit(data.unit),
                    },
                    requested_by=RAISED_BY,
                )
            )
        await self._emit(
            uow, "inspection", "recorded", doc, {"at": uow.now(), "event_id": event.id}
        )
        if cert_findings:
            await self._judge_certification(uow, data.unit, data.district)

    async def _check_officers(
        self, uow: UnitOfWork, data: InspectionConducted, day: dt.date
    ) -> list[CertificateFinding]:
        """无证执法 per officer against the registry; unknown officers join it, uncertified."""
        findings: list[CertificateFinding] = []
        for officer in data.officers:
            entry = await storage.get(uow, storage.OFFICERS, officer.id)
            finding = check_officer(officer.id, officer.cert_no, day, storage.certificate_of(entry))
            if finding is None:
                continue
            findings.append(finding)
            if entry is None:
                await storage.add_unregistered_officer(
                    uow,
                    {
                        "_id": officer.id,
                        "unit": data.unit,
                        "district": data.district,
                        "registered": False,
                        "status": "unregistered",
                        "cert_no": None,
                        "first_seen": data.inspection_id,
                        "updated_at": uow.now(),
                    },
                )
        return findings

    # ------------------------------------------------------------------ officer registry

    async def on_certified(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, OfficerCertified)
        await self._officer_change(
            uow,
            event,
            data.officer_id,
            data.unit,
            data.district,
            "certified",
            {
                "name": data.name,
                "cert_no": data.cert_no,
                "valid_from": data.valid_from.isoformat(),
                "valid_until": data.valid_until.isoformat(),
                "suspended_since": None,
                "suspended_until": None,
                "revoked_since": None,
                "reason": None,
            },
        )

    async def on_suspended(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, OfficerSuspended)
        await self._officer_change(
            uow,
            event,
            data.officer_id,
            data.unit,
            data.district,
            "suspended",
            {
                "cert_no": data.cert_no,
                "suspended_since": data.since.isoformat(),
                "suspended_until": data.until.isoformat() if data.until else None,
                "reason": data.reason,
            },
        )

    async def on_revoked(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, OfficerRevoked)
        await self._officer_change(
            uow,
            event,
            data.officer_id,
            data.unit,
            data.district,
            "revoked",
            {
                "cert_no": data.cert_no,
                "revoked_since": data.since.isoformat(),
                "reason": data.reason,
            },
        )

    async def _officer_change(
        self,
        uow: UnitOfWork,
        event: Envelope,
        officer_id: str,
        unit: str,
        district: str,
        action: str,
        fields: dict[str, Any],
    ) -> None:
        existing = await storage.get(uow, storage.OFFICERS, officer_id)
        if action != "certified":
            if existing is None or not existing.get("registered"):
                raise EventRejected(f"officer {officer_id} holds no certificate to {action[:-2]}")
            if existing["cert_no"] != fields["cert_no"]:
                raise EventRejected(
                    f"officer {officer_id} holds certificate {existing['cert_no']}, "
                    f"not {fields['cert_no']}"
                )
        doc: Document = dict(existing or {"_id": officer_id})
        before = {k: doc.get(k) for k in (*fields, "unit", "district", "registered")}
        doc.update(fields, unit=unit, district=district, registered=True)
        if existing is not None and before == {k: doc.get(k) for k in before}:
            return  # the same change again (new event id): nothing changes
        certificate = storage.certificate_of(doc)
        assert certificate is not None
        doc["status"] = certificate.status_on(cst_day(uow.now()))
        doc["updated_at"] = uow.now()
        storage.put(uow, storage.OFFICERS, doc)
        await self._emit(
            uow,
            "officer",
            "changed",
            doc,
            {"at": uow.now(), "action": action, "event_id": event.id},
            body=officer_snapshot(doc),
        )
        await self._judge_certification(uow, unit, district)
        if existing is not None and existing.get("unit") not in (None, unit):
            await self._judge_certification(uow, existing["unit"], existing["district"])

    async def _judge_certification(self, uow: UnitOfWork, unit: str, district: str) -> None:
        """持证率 of the unit and of its district against the line (as of today, CST)."""
        today = cst_day(uow.now())
        for scope, key in (("unit", unit), ("district", district)):
            officers = await storage.officers_where(uow, scope, key)
            valid = 0
            for o in officers:
                certificate = storage.certificate_of(o)
                valid += bool(certificate and certificate.valid_on(today))
            assessment = certification_rate(
                valid,
                len(officers),
                self.settings.certification_line,
                self.settings.certification_min_officers,
            )
            await self._judge_rate(uow, "certification", scope, key, district, assessment)

    # ------------------------------------------------------------------ reviews (纠错)

    async def on_review(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, ReviewDecided)
        existing = await storage.get(uow, storage.REVIEWS, data.review_id)
        if existing is not None:
            if existing["case_id"] == data.case_id and existing["outcome"] == data.outcome:
                return  # the same outcome again (new event id): nothing changes
            raise EventRejected(
                f"review {data.review_id} already decided ({existing['outcome']} on case "
                f"{existing['case_id']}); conflicting outcome"
            )
        doc: Document = {
            "_id": data.review_id,
            "case_id": data.case_id,
            "unit": data.unit,
            "district": data.district,
            "channel": data.channel,
            "outcome": data.outcome,
            "corrected": data.outcome != "upheld",
            "decided_at": utc(data.decided_at),
            "body": data.body,
            "status": data.outcome,
            "recorded_at": uow.now(),
            "updated_at": uow.now(),
        }
        storage.put(uow, storage.REVIEWS, doc)
        await self._emit(uow, "review", "recorded", doc, {"at": uow.now(), "event_id": event.id})
        for scope, key in (("unit", data.unit), ("district", data.district)):
            outcomes = await storage.outcomes_where(uow, scope, key)
            assessment = correction_rate(
                outcomes, self.settings.correction_line, self.settings.correction_min_reviews
            )
            await self._judge_rate(uow, "correction", scope, key, data.district, assessment)

    # ------------------------------------------------------------------ rates

    async def _judge_rate(
        self,
        uow: UnitOfWork,
        metric: str,
        scope: str,
        key: str,
        district: str,
        assessment: RateAssessment,
    ) -> None:
        """Keep the latest rate; crossing the line raises one lead (and a notice to a unit)."""
        rid = storage.rate_id(metric, scope, key)
        previous = await storage.get(uow, storage.RATES, rid)
        was_breached = bool(previous and previous.get("breached"))
        crossings = int(previous.get("crossings", 0)) if previous else 0
        doc: Document = {
            "_id": rid,
            "metric": metric,
            "scope": scope,
            "key": key,
            "district": district,
            "unit": key if scope == "unit" else None,
            **assessment.model_dump(),
            "crossings": crossings,
            "lead_id": previous.get("lead_id") if previous else None,
            "status": "breached" if assessment.breached else "within",
            "updated_at": uow.now(),
        }
        if previous is not None and all(
            previous.get(k) == v for k, v in doc.items() if k != "updated_at"
        ):
            return
        if crossed(was_breached, assessment):
            doc["crossings"] = crossings + 1
            kind = METRIC_LEADS[metric]
            label = METRIC_LABELS[metric]
            rate = f"{(assessment.rate or 0) * 100:.1f}%"
            side = "低于" if metric == "certification" else "达到"
            summary = (
                f"{key} {label} {rate}（{assessment.numerator}/{assessment.denominator}），"
                f"{side}{assessment.line * 100:.0f}%的标准"
            )
            lead_key = f"{rid}:{doc['crossings']}"
            doc["lead_id"] = SupervisionLead.make_id(kind, lead_key)
            await self._finding(
                uow,
                kind,
                lead_key,
                district=district,
                unit=doc["unit"],
                subject_type=f"{scope}_{metric}",
                subject_id=key,
                summary=summary,
                evidence=assessment.model_dump(),
            )
            if scope == "unit":
                await uow.request_notice(
                    NotificationRequest(
                        idempotency_key=f"inspection:rate:{lead_key}",
                        kind=NoticeKind.SUPERVISION_NOTICE,
                        recipient_unit=key,
                        district=district,
                        subject_type="lead",
                        subject_id=doc["lead_id"],
                        summary=summary,
                        deadline=self._reply_due(uow),
                        context={"metric": metric, "rate": assessment.rate},
                        requested_by=RAISED_BY,
                    )
                )
            await self._emit(
                uow, "rate", "crossed", doc, {"at": uow.now(), "metric": metric, "rate": rate}
            )
        storage.put(uow, storage.RATES, doc)
