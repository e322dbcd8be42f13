"""自查: the unit's self-review and 书面自评报告 of its own case file, before the review."""

from __future__ import annotations

from services.casereview import storage
from services.casereview.domain.commands import SelfReviewSubmission
from services.casereview.domain.records import Case, SelfReview
from services.casereview.handlers.case_log import emit, load_case, save_case
from shared.api import Conflict, Forbidden
from shared.unit_of_work import UnitOfWork


async def submit_self_review(
    uow: UnitOfWork, case_id: str, unit: str, submission: SelfReviewSubmission
) -> Case:
    """The unit's 书面自评报告: kept on the case (and its assigned review, for the
    reviewer); replaced by a resubmission until the review starts, then 409. The event
    ``self_reviewed`` is emitted once per case, on the first submission."""
    case = await load_case(uow, case_id)
    if unit != case.unit:
        raise Forbidden(f"case {case_id} belongs to {case.unit}")
    if not case.self_review_open:
        raise Conflict(f"case {case_id} is {case.status}: its review has started")
    now = uow.now()
    report = SelfReview(
        unit=unit,
        conclusion=submission.conclusion,
        problems=submission.problems,
        score=submission.score,
        submitted_at=submission.submitted_at,
        received_at=now,
    )
    first = case.record_self_review(report)
    save_case(uow, case)
    if case.review_id is not None:
        review = await storage.reviews(uow).get(case.review_id)
        if review is not None:
            review.self_review = case.self_review
            storage.reviews(uow).put(review)
    if first:
        await emit(
            uow,
            case,
            "self_reviewed",
            {
                "at": now,
                "by": unit,
                "score": report.score,
                "problems": len(report.problems),
                "submitted_at": report.submitted_at,
            },
        )
    return case
