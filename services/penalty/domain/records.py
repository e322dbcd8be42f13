"""The penalty service's aggregates, one MongoDB document each (see ``storage.py``).

- :class:`Filing`: one per case: the decided penalty, its top-tier judgement, deadline,
  filing, flags and review state;
- :class:`Flag`: one finding about a filing (``<kind>:<case_id>``);
- :class:`Letter`: a 监督建议书 / 监督决定书 / 备案审查通过 notice and the unit's reply;
- :class:`Anomaly`: the latest judgement of one unit-month (``<unit>:<month>``);
- :class:`FineTotals`: the fines of every unit of one kind in one month
  (``<unit_kind>:<month>``), what the anomaly judgement reads.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.penalty.domain.anomaly import MonthTotal, RuleResult, month_of, unit_kind
from services.penalty.domain.filing import (
    AMOUNT_TOLERANCE,
    Classification,
    DisproportionFinding,
    Status,
    TopTierAssessment,
    derive_status,
)
from shared.aggregate import Aggregate, StoredAsJson
from shared.clock import utc
from shared.contracts import CaseDocument, PenaltyDecided

LetterKind = Literal["acceptance", "recommendation", "decision"]
LetterStatus = Literal["issued", "awaiting_reply", "replied", "escalated"]

DECISION_FACTS = {
    "district",
    "unit",
    "provision",
    "party_type",
    "party_name",
    "fine",
    "goods_value",
    "illegal_gains",
    "measures",
    "circumstances",
}
"""What a 处罚决定 says that a filing keeps as it is."""


class Filing(Aggregate):
    """A case's penalty and its 顶格处罚备案 (``id`` = case_id).

    A filing may arrive before its decision: the decision fields stay empty until then.
    """

    district: str
    unit: str
    unit_kind: str
    status: Status = "awaiting_filing"
    updated_at: dt.datetime | None = None

    decided: bool = False
    provision: str | None = None
    party_type: str | None = None
    party_name: str | None = None
    fine: float | None = None
    goods_value: float | None = None
    illegal_gains: float | None = None
    measures: list[str] = Field(default_factory=list)
    decided_at: dt.datetime | None = None
    month: str | None = Field(default=None, description="CST month of the decision, YYYY-MM")
    circumstances: list[str] = Field(default_factory=list)
    catalogue_version: str | None = None
    decision_event_id: str | None = None

    classification: Classification | None = None
    classification_reason: str | None = None
    classified_by: str | None = None
    classification_note: str | None = None
    top_tier: bool | None = None
    provision_id: str | None = None
    domain: str | None = None
    range_min: float | None = None
    range_max: float | None = None
    range_kind: Literal["fixed", "multiple"] | None = None
    basis: str | None = None
    basis_value: float | None = None
    top_tier_measures: list[str] = Field(default_factory=list)
    measures_not_provided: list[str] = Field(default_factory=list)
    band: str | None = None
    band_label: str | None = None
    above_range: bool = False
    large: bool = False
    priority_review: bool = False
    disproportion: DisproportionFinding | None = None

    deadline_last_day: str | None = Field(default=None, description="last on-time day (CST)")
    deadline_due: dt.datetime | None = None
    filed: bool = False
    filed_at: dt.datetime | None = None
    filed_via: Literal["event", "api"] | None = None
    documents: StoredAsJson[list[CaseDocument]] = Field(default_factory=list)
    late: bool | None = None
    days_late: int | None = None
    missing: bool = False
    missing_at: dt.datetime | None = None

    review_status: Status | None = None
    letters: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)

    def decide(self, decision: PenaltyDecided, event_id: str, catalogue_version: str) -> None:
        """处罚决定: keep the decided penalty (its filing may have come first)."""
        for name, value in decision.model_dump(include=DECISION_FACTS).items():
            setattr(self, name, value)
        self.decided = True
        self.unit_kind = unit_kind(decision.unit)
        self.decided_at = utc(decision.decided_at)
        self.month = month_of(self.decided_at)
        self.catalogue_version = catalogue_version
        self.decision_event_id = event_id
        self.missing = False

    def repeats(self, decision: PenaltyDecided) -> bool:
        """The decision already kept, sent again (under a new event id)."""
        return (
            self.decided
            and self.unit == decision.unit
            and self.provision == decision.provision
            and abs(self.fine_amount - decision.fine) < AMOUNT_TOLERANCE
            and utc(self.decision_time) == utc(decision.decided_at)
        )

    def assess(self, assessment: TopTierAssessment) -> None:
        """Keep the catalogue's judgement of the decided penalty (its fields, by name)."""
        for name, value in assessment.model_dump(exclude={"reason"}).items():
            setattr(self, name, value)
        self.classification_reason = assessment.reason
        self.priority_review = assessment.large

    def add_flag(self, kind: str) -> None:
        if kind not in self.flags:
            self.flags.append(kind)

    def refresh(self, now: dt.datetime) -> None:
        """The status follows from the facts, whatever order they arrived in."""
        self.status = derive_status(
            decided=self.decided,
            top_tier=self.top_tier,
            filed=self.filed,
            missing=self.missing,
            review_status=self.review_status,
        )
        self.updated_at = now

    def contribution(self) -> Contribution | None:
        """What this filing counts in the fine totals: its decided fine, under its unit,
        unit kind and month as stored (``None`` before its decision)."""
        if not self.decided or self.fine is None or self.month is None:
            return None
        return Contribution(
            unit=self.unit, unit_kind=self.unit_kind, month=self.month, fine=self.fine
        )

    @property
    def decision_time(self) -> dt.datetime:
        if self.decided_at is None:
            raise ValueError(f"case {self.id} has no decision")
        return self.decided_at

    @property
    def decision_month(self) -> str:
        if self.month is None:
            raise ValueError(f"case {self.id} has no decision")
        return self.month

    @property
    def fine_amount(self) -> float:
        if self.fine is None:
            raise ValueError(f"case {self.id} has no decision")
        return self.fine


class Contribution(BaseModel):
    """One decided penalty's share of the fine totals (罚没款)."""

    unit: str
    unit_kind: str
    month: str
    fine: float

    @property
    def totals_id(self) -> str:
        return fine_totals_id(self.unit_kind, self.month)


def fine_totals_id(kind: str, month: str) -> str:
    """The :class:`FineTotals` of the units of ``kind`` in ``month``."""
    return f"{kind}:{month}"


class UnitTotal(BaseModel):
    unit: str
    total: float
    count: int


class FineTotals(Aggregate):
    """罚没款 of every unit of one kind in one month (``<unit_kind>:<month>``): the sum and
    number of its decided penalties, kept as decisions are counted, so judging a unit-month
    reads a few documents instead of aggregating filings. A unit without penalties in the
    month has no entry (as the aggregation it replaces had no group)."""

    unit_kind: str
    month: str
    units: list[UnitTotal] = Field(default_factory=list, description="sorted by unit")

    def of(self, unit: str) -> MonthTotal | None:
        for entry in self.units:
            if entry.unit == unit:
                return MonthTotal(total=entry.total, count=entry.count)
        return None

    def peers(self, unit: str) -> list[MonthTotal]:
        """Every other unit with penalties in the month, in unit order."""
        return [
            MonthTotal(total=entry.total, count=entry.count)
            for entry in self.units
            if entry.unit != unit
        ]

    def add(self, unit: str, fine: float, count: int = 1) -> None:
        """Count ``count`` penalties of ``fine`` in all (negative: take them out again)."""
        units = {entry.unit: entry for entry in self.units}
        entry = units.get(unit) or UnitTotal(unit=unit, total=0.0, count=0)
        entry = UnitTotal(unit=unit, total=entry.total + fine, count=entry.count + count)
        if entry.count > 0:
            units[unit] = entry
        else:
            units.pop(unit, None)
        self.units = [units[name] for name in sorted(units)]


class Flag(Aggregate):
    """One finding about a filing, for the supervisors' list (``<kind>:<case_id>``)."""

    kind: str
    case_id: str
    district: str
    unit: str
    reasons: list[str]
    evidence: dict[str, Any]
    lead_id: str | None = None
    raised_at: dt.datetime


class Reply(BaseModel):
    """The unit's answer to a letter (回复); ``late`` when after the due date."""

    by: str
    content: str
    at: dt.datetime
    late: bool


class Letter(Aggregate):
    """A notice about a filing from the bureau's review (``<case_id>-L<n>``)."""

    case_id: str
    district: str
    unit: str
    kind: LetterKind
    title: str
    issued_by: str
    issued_at: dt.datetime
    opinion: str
    reply_due: dt.datetime | None = None
    status: LetterStatus
    reply: Reply | None = None
    escalated_at: dt.datetime | None = None


class Anomaly(Aggregate):
    """The latest judgement of one unit-month's fines (``<unit>:<month>``)."""

    unit: str
    unit_kind: str
    district: str
    month: str
    total: float
    count: int
    anomalous: bool
    rules: list[RuleResult]
    explanation: str
    ever_anomalous: bool = False
    lead_id: str | None = None
    detected_at: dt.datetime | None = None
    updated_at: dt.datetime
