"""What the casereview API's commands carry: validated bodies, no I/O.

Scores and grades are never in a body: a reviewer sends decisions and the score is computed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from services.casereview.domain.rubric import Decision, Extra


class CampaignSpec(BaseModel):
    """A sampling campaign (双随机抽查): period, units, quota and the seed to publish."""

    name: str = Field(min_length=1, max_length=200)
    period_from: dt.date
    period_to: dt.date
    units: list[str] = Field(default_factory=list, max_length=500)
    districts: list[str] = Field(default_factory=list, max_length=50)
    k_per_unit: int | None = Field(default=None, ge=1, le=1000)
    percent: Decimal | None = Field(default=None, gt=0, le=100)
    seed: str | None = Field(
        default=None, min_length=1, max_length=200, description="published; random if omitted"
    )
    reviewer_ids: list[str] = Field(default_factory=list, max_length=1000)
    reviewer_districts: list[str] = Field(default_factory=list, max_length=50)
    include_reviewed: bool = Field(
        default=False, description="also draw cases already sampled by another campaign"
    )

    @model_validator(mode="after")
    def _valid(self) -> CampaignSpec:
        if (self.k_per_unit is None) == (self.percent is None):
            raise ValueError("give exactly one of k_per_unit or percent")
        if self.period_to < self.period_from:
            raise ValueError("period_to is before period_from")
        return self


class ScoreSubmission(BaseModel):
    """The reviewer's decisions; the score and the grade are computed from them."""

    reviewer_id: str = Field(min_length=1, max_length=64)
    decisions: list[Decision] = Field(default_factory=list, max_length=200)
    extras: list[Extra] = Field(default_factory=list, max_length=100)
    comment: str = Field(default="", max_length=4000)


class SelfReviewSubmission(BaseModel):
    """书面自评报告 of one case file (seed 002, 案卷评查: 各行政执法机关…开展自查)."""

    unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="the token's unit if omitted"
    )
    conclusion: str = Field(min_length=1, max_length=8000)
    problems: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=100, description="problems found, one short text each"
    )
    score: float = Field(ge=0, le=100, description="the unit's own score")
    submitted_at: AwareDatetime


class RectificationAnswer(BaseModel):
    """整改报告: what the unit did."""

    unit: str = Field(min_length=1, max_length=100)
    measures: str = Field(min_length=1, max_length=8000)
    documents: list[str] = Field(default_factory=list, max_length=50)


class RectificationVerdict(BaseModel):
    """The supervisor accepts the rectification (closed) or sends it back (new deadline)."""

    by: str = Field(min_length=1, max_length=100)
    accepted: bool
    comment: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _reason(self) -> RectificationVerdict:
        if not self.accepted and not self.comment.strip():
            raise ValueError("sending a rectification back needs a comment")
        return self
