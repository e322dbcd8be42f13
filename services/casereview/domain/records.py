"""The casereview service's aggregates, one MongoDB document each (see ``storage.py``).

- :class:`Case`: one case file (``id`` = case_id): the file as received, its pre-check
  findings, the unit's self-review (自查) and its review state;
- :class:`Campaign`: a 双随机 draw with everything needed to re-run and verify it;
- :class:`Review`: one sampled case in one campaign (``<campaign>:<case>``);
- :class:`Rectification`: the 整改 order of one review (``rect:<review>``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.casereview.domain.norms import Finding
from services.casereview.domain.rubric import Proposal, RectificationKind, ScoreSheet
from services.casereview.domain.sampling import (
    Candidate,
    Quota,
    Reviewer,
    assign_reviewers,
    draw_sample,
    population_hash,
)
from shared.aggregate import Aggregate, StoredAsJson

CaseStatus = Literal[
    "registered",
    "sampled",
    "scored",
    "rectification_required",
    "rectification_answered",
    "rectification_closed",
    "rectification_overdue",
]
ReviewStatus = Literal["assigned", "scored"]
RectificationStatus = Literal["open", "overdue", "answered", "closed"]


class IgnoredRevision(BaseModel):
    """A revised file that arrived after the case was sampled (the reviewed one stays)."""

    event_id: str
    file_hash: str
    at: dt.datetime


SELF_REVIEW_OPEN: frozenset[CaseStatus] = frozenset({"registered", "sampled"})
"""Case states in which the unit may (re)submit its self-review: the review has not started
(a sampled case's reviewer has not scored it yet)."""


class SelfReview(BaseModel):
    """The unit's 自查 of one case file and its 书面自评报告 (seed 002, 案卷评查): submitted
    before the bureau's review, shown to the reviewer next to the pre-check findings."""

    unit: str
    conclusion: str
    problems: list[str] = Field(default_factory=list, description="problems the unit found")
    score: float = Field(ge=0, le=100, description="the unit's own score, 0–100")
    submitted_at: dt.datetime = Field(description="when the unit signed the report")
    received_at: dt.datetime
    revision: int = Field(default=1, ge=1, description="1 + replacements before the review")


class ReviewState(BaseModel):
    """Where a case file's review stands: what its events and its list entries carry."""

    campaign_id: str | None = None
    review_id: str | None = None
    reviewer_id: str | None = None
    grade: str | None = None
    score: float | None = None
    rectification_id: str | None = None
    rectification_status: RectificationStatus | None = None
    rectification_deadline: dt.datetime | None = None


class Case(Aggregate, ReviewState):
    """A case file (案卷) and where its review stands (``id`` = case_id)."""

    district: str
    unit: str
    procedure: str
    matter: str
    closed_on: str = Field(description="ISO date the case was closed")
    decision: dict[str, Any] = Field(description="the file's decision, as received")
    file: dict[str, Any] = Field(description="the whole file, as received (JSON)")
    file_hash: str
    findings: StoredAsJson[list[Finding]] = Field(default_factory=list)
    finding_codes: list[str] = Field(default_factory=list)
    status: CaseStatus = "registered"
    received_at: dt.datetime
    event_id: str
    revision: int = 1
    ignored_revisions: list[IgnoredRevision] = Field(default_factory=list)
    self_review: SelfReview | None = None
    updated_at: dt.datetime | None = None

    @property
    def self_review_open(self) -> bool:
        """The unit may still submit or replace its self-review (the review has not started)."""
        return self.status in SELF_REVIEW_OPEN

    def record_self_review(self, report: SelfReview) -> bool:
        """Keep ``report`` as the case's self-review (one per case: a resubmission replaces
        it, counting revisions); ``True`` on the first one. The caller checks
        :attr:`self_review_open` and the unit first."""
        first = self.self_review is None
        if self.self_review is not None:
            report = report.model_copy(update={"revision": self.self_review.revision + 1})
        self.self_review = report
        return first


class Campaign(Aggregate):
    """A sampling campaign (双随机抽查): its input (population, reviewers, seed) and result."""

    name: str
    period_from: str
    period_to: str
    units: list[str] = Field(default_factory=list)
    districts: list[str] = Field(default_factory=list)
    k_per_unit: int | None = None
    percent: str | None = Field(default=None, description="a decimal, kept exactly as text")
    seed: str
    algorithm: str
    population: list[tuple[str, str]] = Field(description="[case_id, unit], by case_id")
    population_size: int
    population_hash: str
    reviewers: list[Reviewer]
    directory_version: str
    rubric_version: str
    sample: list[str]
    assignments: dict[str, str] = Field(description="case_id → reviewer_id")
    created_at: dt.datetime
    status: Literal["drawn"] = "drawn"

    def verify(self) -> Verification:
        """Re-draw from the recorded population, reviewers and seed; compare with the record
        (anyone can do the same from the published input, see ``SAMPLING.md``)."""
        population = [Candidate(case_id=case_id, unit=unit) for case_id, unit in self.population]
        quota = Quota(
            k_per_unit=self.k_per_unit,
            percent=Decimal(self.percent) if self.percent else None,
        )
        sample = draw_sample(population, self.seed, quota)
        assignments = assign_reviewers(sample, self.reviewers, self.seed)
        sample_ids = [candidate.case_id for candidate in sample]
        redrawn_hash = population_hash(population)
        return Verification(
            campaign_id=self.id,
            algorithm=self.algorithm,
            seed=self.seed,
            population_hash=redrawn_hash,
            population_hash_matches=redrawn_hash == self.population_hash,
            sample_matches=sample_ids == self.sample,
            assignments_match=assignments == self.assignments,
            sample=sample_ids,
            assignments=assignments,
        )


class Verification(BaseModel):
    """A campaign re-drawn from its recorded input, compared with its recorded result."""

    campaign_id: str
    algorithm: str
    seed: str
    population_hash: str
    population_hash_matches: bool
    sample_matches: bool
    assignments_match: bool
    sample: list[str]
    assignments: dict[str, str]


class Review(Aggregate):
    """The review of one sampled case: proposed deductions, then the computed sheet."""

    campaign_id: str
    case_id: str
    unit: str
    district: str
    closed_on: str
    reviewer_id: str
    reviewer_unit: str
    status: ReviewStatus = "assigned"
    rubric_version: str
    proposals: StoredAsJson[list[Proposal]] = Field(default_factory=list)
    assigned_at: dt.datetime
    self_review: SelfReview | None = Field(
        default=None, description="the unit's self-review of the case, copied from the case"
    )
    sheet: StoredAsJson[ScoreSheet | None] = None
    grade: str | None = None
    score: float | None = None
    failed: bool | None = None
    defects: list[str] = Field(default_factory=list)
    comment: str | None = None
    scored_at: dt.datetime | None = None
    scored_by: str | None = None


class Issue(BaseModel):
    """One problem the unit must fix (a deduction or veto of the sheet)."""

    item: str
    text: str
    points: float
    comment: str = ""


class Answer(BaseModel):
    """整改报告 of one round."""

    unit: str
    measures: str
    documents: list[str] = Field(default_factory=list)
    at: dt.datetime
    round: int
    late: bool


class Verdict(BaseModel):
    """The supervisor's judgement of one round's answer."""

    by: str
    accepted: bool
    comment: str = ""
    at: dt.datetime
    round: int


class Rectification(Aggregate):
    """The 整改 order of one review, its rounds, answers and verdicts (``rect:<review>``)."""

    case_id: str
    review_id: str
    campaign_id: str
    unit: str
    district: str
    kind: RectificationKind = "failed"
    grade: str
    score: float
    vetoes: list[str] = Field(default_factory=list)
    issues: list[Issue] = Field(default_factory=list)
    status: RectificationStatus = "open"
    round: int = 1
    required_at: dt.datetime
    deadline: dt.datetime
    overdue: bool = False
    overdue_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    answers: list[Answer] = Field(default_factory=list)
    verdicts: list[Verdict] = Field(default_factory=list)
