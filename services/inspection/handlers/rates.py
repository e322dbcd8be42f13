"""持证率 and 被纠错率 per unit and per district: recomputed when an officer or a review
changes, kept in ``rates``; crossing the line raises one lead (and a notice to a unit)."""

from __future__ import annotations

from services.inspection import storage
from services.inspection.domain.rules import (
    RateAssessment,
    certification_rate,
    correction_rate,
    crossed,
)
from services.inspection.handlers.findings import Findings, cst_day
from shared.contracts import LeadKind, SupervisionLead
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork

METRIC_LEADS: dict[str, LeadKind] = {
    "certification": LeadKind.LOW_CERTIFICATION_RATE,
    "correction": LeadKind.HIGH_CORRECTION_RATE,
}
METRIC_LABELS = {"certification": "持证率", "correction": "被纠错率"}


class RateJudge(Findings):
    """Judges a unit's and its district's rates against their lines."""

    async def _judge_certification(self, uow: UnitOfWork, unit: str, district: str) -> None:
        """持证率 of the unit and of its district against the line (as of today, CST)."""
        today = cst_day(uow.now())
        for scope, key in (("unit", unit), ("district", district)):
            officers = await storage.officers_where(uow, scope, key)
            valid = 0
            for officer in officers:
                certificate = storage.certificate_of(officer)
                valid += bool(certificate and certificate.valid_on(today))
            assessment = certification_rate(
                valid,
                len(officers),
                self.settings.certification_line,
                self.settings.certification_min_officers,
            )
            await self._judge_rate(uow, "certification", scope, key, district, assessment)

    async def _judge_correction(self, uow: UnitOfWork, unit: str, district: str) -> None:
        """被纠错率 of the unit and of its district against the line."""
        for scope, key in (("unit", unit), ("district", district)):
            outcomes = await storage.outcomes_where(uow, scope, key)
            assessment = correction_rate(
                outcomes, self.settings.correction_line, self.settings.correction_min_reviews
            )
            await self._judge_rate(uow, "correction", scope, key, district, assessment)

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
        rate_id = storage.rate_id(metric, scope, key)
        previous = await storage.get(uow, storage.RATES, rate_id)
        was_breached = bool(previous and previous.get("breached"))
        crossings = int(previous.get("crossings", 0)) if previous else 0
        doc: Document = {
            "_id": rate_id,
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
            lead_key = f"{rate_id}:{doc['crossings']}"
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
                await self._notice(
                    uow,
                    f"rate:{lead_key}",
                    unit=key,
                    district=district,
                    subject_type="lead",
                    subject_id=doc["lead_id"],
                    summary=summary,
                    context={"metric": metric, "rate": assessment.rate},
                )
            await self._emit(
                uow, "rate", "crossed", doc, {"at": uow.now(), "metric": metric, "rate": rate}
            )
        storage.put(uow, storage.RATES, doc)
