"""处罚决定: a decided penalty is judged against the catalogue (顶格处罚?), a top-tier one gets
its filing deadline (备案期限), is checked for disproportion (过罚不当) and, when large (大额),
for priority review; a penalty the catalogue cannot judge waits for a supervisor's
classification (人工认定). Every decision is counted in its unit-month's fine totals and
re-judges it (罚没款异常).
"""

from __future__ import annotations

from services.penalty import storage
from services.penalty.domain.anomaly import month_of, unit_kind
from services.penalty.domain.filing import assess_penalty, check_disproportion, is_large
from services.penalty.domain.records import Filing
from services.penalty.handlers.anomalies import FineAnomalies
from services.penalty.handlers.filings import Filings
from services.penalty.handlers.steps import FILING_DUE, filing_due_timer
from shared.api import Conflict, existing
from shared.clock import utc
from shared.contracts import LeadKind, PenaltyDecided, parse_data
from shared.envelope import Envelope, EventRejected
from shared.unit_of_work import UnitOfWork

DECISION_FLAGS = ("classification_needed", "large_top_tier", "disproportion")
"""The findings a decision may record (``<kind>:<case_id>``)."""


def decision_of(event: Envelope) -> PenaltyDecided | None:
    """The decision an event carries (``None``: it carries none, or not a valid one)."""
    if event.type != "gov.enforcement.penalty.decided":
        return None
    try:
        return PenaltyDecided.model_validate(event.data)
    except Exception:  # the handler refuses it
        return None


class Decisions(Filings, FineAnomalies):
    """The decided penalty, its top-tier judgement and what follows from it."""

    # -- what a batch's decisions will read (prefetch: must not raise) ---------------------

    def totals_of(self, event: Envelope) -> list[str] | None:
        """The fine totals judging the decision's unit-month reads."""
        decision = decision_of(event)
        if decision is None:
            return None
        return self.totals_ids(unit_kind(decision.unit), month_of(utc(decision.decided_at)))

    def anomaly_of(self, event: Envelope) -> str | None:
        """The unit-month judgement the decision updates."""
        decision = decision_of(event)
        if decision is None:
            return None
        return f"{decision.unit}:{month_of(utc(decision.decided_at))}"

    def flags_of(self, event: Envelope) -> list[str] | None:
        """The findings the event may record about its case."""
        data = event.data if isinstance(event.data, dict) else {}
        case_id = data.get("case_id")
        if not isinstance(case_id, str):
            return None
        kinds = DECISION_FLAGS if event.type.endswith(".decided") else ("late_filing",)
        return [f"{kind}:{case_id}" for kind in kinds]

    async def on_decided(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, PenaltyDecided)
        known = await storage.filings(uow).get(data.case_id)
        if known is not None and known.decided:
            if known.repeats(data):
                return  # the same decision again (new event id): nothing changes
            raise EventRejected(
                f"case {data.case_id} already has a decision "
                f"({known.fine_amount:g} 元 under {known.provision}); conflicting decision"
            )
        if known is not None and known.unit != data.unit:
            raise EventRejected(
                f"case {data.case_id} was filed by {known.unit}, decided by {data.unit}"
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
        counted = known.contribution() if known is not None else None
        filing = known or Filing(
            id=data.case_id, district=data.district, unit=data.unit, unit_kind=unit_kind(data.unit)
        )
        filing.decide(data, event.id, self.catalogue.version)
        filing.assess(assessment)
        await self.emit(
            uow,
            filing,
            "decided",
            {"at": uow.now(), "event_id": event.id, "assessment": assessment.model_dump()},
        )
        if assessment.top_tier is None:
            await self.flag(
                uow,
                filing,
                "classification_needed",
                [assessment.reason],
                {"provision": data.provision, "party_type": data.party_type, "fine": data.fine},
            )
            await self.emit(
                uow,
                filing,
                "classification_needed",
                {"at": uow.now(), "reason": assessment.reason},
            )
        elif assessment.top_tier:
            await self.establish_top_tier(uow, filing, assessment.reason, by="catalogue")
        self.save(uow, filing)
        await self.count_fine(uow, counted, filing)

    async def classify(
        self, uow: UnitOfWork, case_id: str, top_tier: bool, by: str, note: str
    ) -> Filing:
        """A supervisor decides a penalty the catalogue could not judge."""
        filing = await existing(storage.filings(uow), case_id, "penalty of case")
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
            await self.establish_top_tier(uow, filing, f"人工认定为顶格处罚：{note}", by=by)
        self.save(uow, filing)
        return filing

    async def establish_top_tier(
        self, uow: UnitOfWork, filing: Filing, reason: str, by: str
    ) -> None:
        """A top-tier penalty is established: deadline, disproportion, lateness or timer."""
        deadline = self.deadline(filing)
        filing.deadline_last_day = deadline.last_day.isoformat()
        filing.deadline_due = deadline.due
        await self.emit(
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
            await self.flag(
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
            if await self.flag(
                uow,
                filing,
                "disproportion",
                finding.reasons,
                {"fine": filing.fine, "provision": filing.provision, **finding.model_dump()},
                LeadKind.DISPROPORTION,
            ):
                await self.emit(
                    uow,
                    filing,
                    "disproportion_flagged",
                    {"at": uow.now(), **finding.model_dump()},
                )
        if filing.filed and filing.filed_at is not None:
            await self.check_late(uow, filing, filing.filed_at, deadline)
        else:
            await uow.schedule(
                filing_due_timer(filing.id),
                FILING_DUE,
                deadline.due,
                {"case_id": filing.id},
                subject=f"filing/{filing.id}",
            )
