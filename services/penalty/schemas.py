"""The penalty API's read models (``…Out``: what a stored document shows; internal fields such
as the party's name stay out) and request bodies (``…In``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.penalty.domain.catalogue import Provision
from services.penalty.domain.filing import DisproportionFinding, ReviewOutcome
from services.penalty.domain.records import LetterKind
from shared.api import Out
from shared.clock import Instant
from shared.contracts import CaseDocument

FlagKind = Literal[
    "classification_needed",
    "large_top_tier",
    "late_filing",
    "missing_filing",
    "disproportion",
]
MONTH = r"^\d{4}-\d{2}$"
"""A month as the filters take it: ``YYYY-MM``."""


class FilingOut(Out):
    id: str = Field(description="case_id")
    district: str
    unit: str
    status: str
    updated_at: dt.datetime | None = None
    decided: bool = False
    provision: str | None = None
    provision_id: str | None = None
    domain: str | None = None
    party_type: str | None = None
    fine: float | None = None
    decided_at: dt.datetime | None = None
    month: str | None = None
    circumstances: list[str] = Field(default_factory=list)
    catalogue_version: str | None = None
    classification: str | None = None
    classification_reason: str | None = None
    top_tier: bool | None = None
    range_min: float | None = None
    range_max: float | None = None
    band: str | None = None
    band_label: str | None = None
    above_range: bool = False
    large: bool = False
    priority_review: bool = False
    deadline_last_day: str | None = Field(default=None, description="last on-time day (CST)")
    deadline_due: dt.datetime | None = None
    filed: bool = False
    filed_at: dt.datetime | None = None
    filed_via: str | None = None
    documents: list[CaseDocument] = Field(default_factory=list)
    late: bool | None = None
    days_late: int | None = None
    missing: bool = False
    disproportion: DisproportionFinding | None = None
    review_status: str | None = None
    letters: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class FlagOut(Out):
    id: str
    kind: str
    case_id: str
    district: str
    unit: str
    reasons: list[str]
    evidence: dict[str, Any]
    lead_id: str | None
    raised_at: dt.datetime


class RuleOut(BaseModel):
    rule: str
    applicable: bool
    triggered: bool
    baseline: float | None
    value: float | None
    threshold: float
    explanation: str


class AnomalyOut(Out):
    id: str = Field(description="<unit>:<month>")
    unit: str
    unit_kind: str
    district: str
    month: str
    total: float
    count: int
    anomalous: bool
    ever_anomalous: bool
    rules: list[RuleOut]
    explanation: str
    lead_id: str | None
    detected_at: dt.datetime | None
    updated_at: dt.datetime


class ReplyOut(BaseModel):
    by: str
    content: str
    at: dt.datetime
    late: bool


class LetterOut(Out):
    id: str
    case_id: str
    district: str
    unit: str
    kind: LetterKind
    title: str
    issued_by: str
    issued_at: dt.datetime
    opinion: str
    reply_due: dt.datetime | None
    status: str
    reply: ReplyOut | None
    escalated_at: dt.datetime | None = None


class ReviewResult(BaseModel):
    filing: FilingOut
    letter: LetterOut


class CataloguePage(BaseModel):
    version: str
    effective_from: str
    total: int
    limit: int
    offset: int
    items: list[Provision]


class FilingIn(BaseModel):
    """A unit files its top-tier penalty (顶格处罚备案) with the filing documents."""

    case_id: str = Field(min_length=1, max_length=64)
    unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="must be the token's (default)"
    )
    documents: list[CaseDocument] = Field(min_length=1, max_length=100)
    filed_at: Instant | None = Field(default=None, description="default: now")
    district: str | None = Field(default=None, pattern=r"^\d{6}$")


class ClassificationIn(BaseModel):
    top_tier: bool
    by: str = Field(min_length=1, max_length=100)
    note: str = Field(min_length=1, max_length=2000)


class ReviewIn(BaseModel):
    outcome: ReviewOutcome
    by: str = Field(min_length=1, max_length=100, description="the reviewing bureau/officer")
    opinion: str = Field(min_length=1, max_length=4000)


class ReplyIn(BaseModel):
    by: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the unit answering: the token's (default); another unit is refused",
    )
    content: str = Field(min_length=1, max_length=8000)
