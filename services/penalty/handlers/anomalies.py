"""罚没款异常增长: each decided penalty re-judges the month of its unit against the unit's own
trailing months and its peers (units of the same kind) in the same month; the first time a
unit-month is anomalous it raises a 监督线索.
"""

from __future__ import annotations

from services.penalty import storage
from services.penalty.domain.anomaly import MonthTotal, assess_unit_month, trailing_months
from services.penalty.domain.records import Anomaly, Filing
from services.penalty.handlers.steps import FilingSteps
from shared.contracts import LeadKind, SupervisionLead
from shared.unit_of_work import UnitOfWork


class FineAnomalies(FilingSteps):
    """The unit-month judgement, kept up to date inside the decision's transaction."""

    async def recompute_anomaly(self, uow: UnitOfWork, filing: Filing) -> None:
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
            triggered = [rule.model_dump() for rule in assessment.rules if rule.triggered]
            await self.raise_lead(
                uow,
                filing,
                LeadKind.FINE_ANOMALY,
                record.lead_id,
                assessment.explanation[:2000],
                {"assessment": assessment.model_dump(), "triggered": triggered},
                subject=("unit_month", anomaly_id),
            )
            await self.emit(
                uow,
                filing,
                "anomaly_detected",
                {"at": uow.now(), "anomaly_id": anomaly_id, "assessment": assessment.model_dump()},
            )
        storage.anomalies(uow).put(record)
