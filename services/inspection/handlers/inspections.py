"""涉企检查: each inspection recorded and judged by the rules 未备案, 未亮码, 无证执法 and
多头/重复检查; a finding raises its lead and one notice to the unit per inspection."""

from __future__ import annotations

import datetime as dt

from services.inspection import storage
from services.inspection.domain.rules import (
    CertificateFinding,
    check_code,
    check_officer,
    check_plan,
    check_repeats,
    window_bucket,
)
from services.inspection.handlers.findings import cst_day
from services.inspection.handlers.rates import RateJudge
from shared.city import supervising_unit
from shared.clock import utc
from shared.contracts import (
    InspectionConducted,
    LeadKind,
    parse_data,
)
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork


class InspectionRecords(RateJudge):
    """Records inspections and applies the inspection rules to each."""

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
            "officers": [officer.model_dump(mode="json") for officer in data.officers],
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
            reasons.extend(finding.reason for finding in cert_findings)
            await self._finding(
                uow,
                LeadKind.UNCERTIFIED_OFFICER,
                data.inspection_id,
                district=data.district,
                unit=data.unit,
                subject_type="inspection",
                subject_id=data.inspection_id,
                summary="无证执法：" + "；".join(finding.reason for finding in cert_findings),
                evidence={
                    "officers": [finding.model_dump() for finding in cert_findings],
                    "day": day,
                },
                inspection_id=data.inspection_id,
            )
        doc["uncertified_officers"] = [finding.officer_id for finding in cert_findings]
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
            await self._notice(
                uow,
                f"notice:{data.inspection_id}",
                unit=data.unit,
                district=data.district,
                subject_type="inspection",
                subject_id=data.inspection_id,
                summary=f"{day} 对企业 {data.enterprise} 的行政检查存在问题：" + "；".join(reasons),
                context={
                    "inspection_id": data.inspection_id,
                    "enterprise": data.enterprise,
                    "findings": list(doc["flags"]),
                    "bureau": supervising_unit(data.unit),
                },
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
