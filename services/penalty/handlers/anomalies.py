"""罚没款异常增长: each decided penalty re-judges the month of its unit against the unit's own
trailing months and its peers (units of the same kind) in the same month; the first time a
unit-month is anomalous it raises a 监督线索.

The totals it judges are kept as data (``fine_totals``, one document per unit kind and
month): a decision is counted in them in its own transaction, and a changed decision moves
what the filing counted from its old unit-month to its new one. Judging then reads the
trailing months' documents by id (prefetched for the batch), never aggregates filings.
"""

from __future__ import annotations

from services.penalty import storage
from services.penalty.domain.anomaly import MonthTotal, assess_unit_month, trailing_months
from services.penalty.domain.records import (
    Anomaly,
    Contribution,
    Filing,
    FineTotals,
    fine_totals_id,
)
from services.penalty.handlers.steps import FilingSteps
from shared.contracts import LeadKind, SupervisionLead
from shared.unit_of_work import UnitOfWork


class FineAnomalies(FilingSteps):
    """The unit-month judgement, kept up to date inside the decision's transaction."""

    def totals_ids(self, unit_kind: str, month: str) -> list[str]:
        """The fine totals judging a unit-month reads: its trailing months' and its own."""
        history = trailing_months(month, self.thresholds.history_months)
        return [fine_totals_id(unit_kind, m) for m in [*history, month]]

    async def count_fine(
        self, uow: UnitOfWork, counted: Contribution | None, filing: Filing
    ) -> None:
        """Move what the filing counts in the fine totals from ``counted`` (what it counted
        before: ``None`` if nothing) to what it counts now, then re-judge its unit-month."""
        now = filing.contribution()
        if counted != now:
            if counted is not None:
                await self._add_fine(uow, counted, -counted.fine, -1)
            if now is not None:
                await self._add_fine(uow, now, now.fine, 1)
        await self.recompute_anomaly(uow, filing)

    async def _add_fine(
        self, uow: UnitOfWork, share: Contribution, fine: float, count: int
    ) -> None:
        repo = storage.fine_totals(uow)
        totals = await repo.get(share.totals_id)
        if totals is None:
            totals = FineTotals(id=share.totals_id, unit_kind=share.unit_kind, month=share.month)
            totals.add(share.unit, fine, count)
            repo.add(totals)
        else:
            totals.add(share.unit, fine, count)
            repo.put(totals)

    async def recompute_anomaly(self, uow: UnitOfWork, filing: Filing) -> None:
        """Re-judge the unit-month this penalty falls in, from the fine totals (the unit's
        trailing months and its peers in the month, as this transaction counted them)."""
        unit, month = filing.unit, filing.decision_month
        repo = storage.fine_totals(uow)
        ids = self.totals_ids(filing.unit_kind, month)
        await repo.load(ids)
        totals: dict[str, MonthTotal] = {}
        peers: list[MonthTotal] = []
        for doc_id in ids:
            kept = await repo.get(doc_id)
            if kept is None:
                continue
            own = kept.of(unit)
            if own is not None:
                totals[kept.month] = own
            if kept.month == month:
                peers = kept.peers(unit)
        current = totals.pop(month, MonthTotal(total=0.0, count=0))
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
