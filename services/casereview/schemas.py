"""Read models of the casereview API: what its lists and items answer (``shared.api.Out``:
the document's ``_id`` is ``id``, internal fields are dropped)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.casereview.domain.norms import Finding
from services.casereview.domain.records import ReviewState, SelfReview
from services.casereview.domain.rubric import Proposal, Rubric, ScoreSheet
from services.casereview.domain.sampling import Reviewer
from shared.api import Out


class CaseSummary(Out, ReviewState):
    id: str = Field(description="case_id")
    district: str
    unit: str
    status: str
    procedure: str
    matter: str
    closed_on: str
    decision: dict[str, Any]
    finding_codes: list[str]
    self_review: SelfReview | None = None
    updated_at: dt.datetime


class CaseDetail(CaseSummary):
    file: dict[str, Any]
    findings: list[Finding]
    revision: int
    received_at: dt.datetime
    ignored_revisions: list[dict[str, Any]] = Field(default_factory=list)


class CampaignSummary(Out):
    id: str
    name: str
    period_from: str
    period_to: str
    units: list[str]
    districts: list[str]
    k_per_unit: int | None
    percent: str | None
    seed: str
    algorithm: str
    population_size: int
    population_hash: str
    directory_version: str
    rubric_version: str
    created_at: dt.datetime
    status: str


class CampaignOut(CampaignSummary):
    sample: list[str]
    assignments: dict[str, str] = Field(description="case_id → reviewer_id")
    reviewers: list[Reviewer]


class CampaignPopulation(Out):
    """Everything a third party needs to re-draw (see SAMPLING.md)."""

    id: str
    seed: str
    algorithm: str
    k_per_unit: int | None
    percent: str | None
    population: list[tuple[str, str]] = Field(description="[case_id, unit], by case_id")
    population_hash: str
    reviewers: list[Reviewer]


class ReviewOut(Out):
    id: str
    campaign_id: str
    case_id: str
    unit: str
    district: str
    closed_on: str
    reviewer_id: str
    reviewer_unit: str
    status: str
    rubric_version: str
    proposals: list[Proposal] = Field(description="pre-filled from the pre-check findings")
    self_review: SelfReview | None = Field(
        default=None, description="the unit's self-review (自查), next to the pre-check's"
    )
    assigned_at: dt.datetime
    sheet: ScoreSheet | None = None
    grade: str | None = None
    score: float | None = None
    failed: bool | None = None
    comment: str | None = None
    scored_at: dt.datetime | None = None


class RectificationOut(Out):
    id: str
    case_id: str
    review_id: str
    campaign_id: str
    unit: str
    district: str
    kind: Literal["failed", "deductions"] = Field(
        default="failed", description="failed: 不合格, escalated; deductions: problems to fix"
    )
    grade: str
    score: float
    vetoes: list[str]
    issues: list[dict[str, Any]]
    status: Literal["open", "overdue", "answered", "closed"]
    round: int
    required_at: dt.datetime
    deadline: dt.datetime
    overdue: bool
    overdue_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    answers: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]


class RubricInfo(BaseModel):
    current: str
    versions: list[str]
    rubric: Rubric
