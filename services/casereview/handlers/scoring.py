"""评查打分: the reviewer's decisions give the score sheet by the review's rubric; a sheet
with deductions orders rectification (整改), a failing one is also escalated."""

from __future__ import annotations

from services.casereview import storage
from services.casereview.domain.commands import ScoreSubmission
from services.casereview.domain.records import Review
from services.casereview.domain.rubric import ScoreSheet, rectification_kind, review_sheet
from services.casereview.handlers.case_log import load_case, record
from services.casereview.handlers.rectification import Rectifications
from services.casereview.reference import ReferenceData
from shared.api import Conflict, Forbidden, existing
from shared.unit_of_work import UnitOfWork


class Scoring:
    """评查打分; a sheet with deductions hands the case to the rectification process."""

    def __init__(self, reference: ReferenceData, rectifications: Rectifications) -> None:
        self.reference = reference
        self.rectifications = rectifications

    def preview(self, review: Review, submission: ScoreSubmission) -> ScoreSheet:
        """The sheet the decisions give (``ReviewError``, a 422, when they do not fit)."""
        rubric = self.reference.rubric_of(review.rubric_version)
        return review_sheet(rubric, review.proposals, submission.decisions, submission.extras)

    async def score_review(
        self, uow: UnitOfWork, review_id: str, submission: ScoreSubmission
    ) -> Review:
        """Compute the sheet; deductions open the rectification (notice, lead, durable timer)."""
        review = await existing(storage.reviews(uow), review_id, "review")
        if review.status == "scored":
            raise Conflict(f"review {review_id} is already scored ({review.grade})")
        if submission.reviewer_id != review.reviewer_id:
            raise Forbidden(f"review {review_id} is assigned to {review.reviewer_id}")
        rubric = self.reference.rubric_of(review.rubric_version)
        sheet = self.preview(review, submission)
        now = uow.now()
        review.status = "scored"
        review.sheet = sheet
        review.grade = sheet.grade
        review.score = sheet.total
        review.failed = rubric.needs_rectification(sheet.grade)
        review.defects = sorted({line.item for line in sheet.lines})
        review.comment = submission.comment
        review.scored_at = now
        review.scored_by = submission.reviewer_id
        storage.reviews(uow).put(review)
        case = await load_case(uow, review.case_id)
        case.status = "scored"
        case.grade = sheet.grade
        case.score = sheet.total
        await record(
            uow,
            case,
            "scored",
            {
                "at": now,
                "by": submission.reviewer_id,
                "review_id": review_id,
                "grade": sheet.grade,
                "score": sheet.total,
                "vetoes": sheet.vetoes,
                "rubric_version": sheet.rubric_version,
            },
        )
        kind = rectification_kind(rubric, sheet)
        if kind is not None:
            await self.rectifications.require(uow, case, review, sheet, kind)
        return review
