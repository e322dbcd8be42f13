"""Reviews (评查): the sampled cases' reviews, a preview of a score sheet, the score."""

from __future__ import annotations

from typing import Literal

from services.casereview import reads
from services.casereview.api.deps import (
    ScoringDep,
    guarded,
    may_score,
    rubric_problems_as_422,
)
from services.casereview.domain.commands import ScoreSubmission
from services.casereview.domain.records import Review
from services.casereview.domain.rubric import ScoreSheet
from services.casereview.schemas import ReviewOut
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.identity import CallerDep

router = audited_router(prefix="/v1/casereview", tags=["casereview"])


@router.get("/reviews", response_model=Page[ReviewOut])
async def list_reviews(
    svc: ServiceDep,
    caller: CallerDep,
    campaign_id: str | None = None,
    reviewer_id: str | None = None,
    status: Literal["assigned", "scored"] | None = None,
    unit: str | None = None,
    district: str | None = None,
    grade: str | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[ReviewOut]:
    filters = {
        "campaign_id": campaign_id,
        "reviewer_id": reviewer_id,
        "status": status,
        "unit": unit,
        "district": district,
        "grade": grade,
    }
    return await reads.REVIEWS.page(svc, caller, filters, ReviewOut, limit, offset)


@router.get("/reviews/{review_id}", response_model=ReviewOut)
async def get_review(review_id: str, svc: ServiceDep, caller: CallerDep) -> ReviewOut:
    """A review with its proposed deductions (pre-filled from the pre-check)."""
    return ReviewOut.of(await reads.REVIEWS.one(svc, caller, review_id))


@router.post("/reviews/{review_id}/preview", response_model=ScoreSheet)
async def preview_review(
    review_id: str,
    submission: ScoreSubmission,
    svc: ServiceDep,
    scoring: ScoringDep,
    caller: CallerDep,
) -> ScoreSheet:
    """The sheet these decisions would give, without saving anything."""
    review = await may_score(svc, caller, review_id, submission.reviewer_id)
    with rubric_problems_as_422():
        return scoring.preview(Review.from_doc(review), submission)


@router.post("/reviews/{review_id}/score", response_model=ReviewOut)
async def score_review(
    review_id: str,
    submission: ScoreSubmission,
    svc: ServiceDep,
    scoring: ScoringDep,
    caller: CallerDep,
) -> ReviewOut:
    """Record the decisions; score and grade are computed; 不合格 orders rectification."""
    await may_score(svc, caller, review_id, submission.reviewer_id)
    review = await guarded(svc, lambda uow: scoring.score_review(uow, review_id, submission))
    return ReviewOut.of(review.to_doc())
