"""The unit's self-review (自查, 书面自评报告) before the bureau's review (seed 002, 案卷评查:
"各行政执法机关对列入评查范围的执法案卷开展自查,提交书面自评报告"): the rule, no servers."""

from __future__ import annotations

import datetime as dt
from typing import get_args

import pytest
from pydantic import ValidationError

from services.casereview.domain.commands import SelfReviewSubmission
from services.casereview.domain.records import (
    SELF_REVIEW_OPEN,
    CaseStatus,
    SelfReview,
)
from tests.casereview.test_records import case

AT = dt.datetime(2025, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


def report(score: float, *problems: str) -> SelfReview:
    return SelfReview(
        unit="310106-cgzf",
        conclusion="自查结论",
        problems=list(problems),
        score=score,
        submitted_at=AT,
        received_at=AT,
    )


def test_one_self_review_per_case_a_resubmission_replaces_it() -> None:
    c = case().model_copy(update={"self_review": None, "status": "registered"})
    assert c.record_self_review(report(80, "缺少送达回证")) is True
    assert c.self_review is not None and c.self_review.revision == 1
    assert c.record_self_review(report(70, "缺少送达回证", "未告知陈述申辩")) is False
    assert c.self_review.revision == 2
    assert (c.self_review.score, len(c.self_review.problems)) == (70, 2)


def test_self_review_is_open_only_until_the_review_starts() -> None:
    for status in get_args(CaseStatus):
        c = case().model_copy(update={"status": status})
        assert c.self_review_open is (status in ("registered", "sampled"))
    assert SELF_REVIEW_OPEN <= set(get_args(CaseStatus))


@pytest.mark.parametrize(
    "bad",
    [
        {"score": 101},
        {"score": -1},
        {"conclusion": ""},
        {"problems": [""]},
        {"submitted_at": "2025-05-06T07:08:09"},  # no time zone
    ],
)
def test_submission_refuses_bad_input(bad: dict[str, object]) -> None:
    body: dict[str, object] = {
        "conclusion": "规范",
        "problems": ["x"],
        "score": 90,
        "submitted_at": AT.isoformat(),
    }
    SelfReviewSubmission.model_validate(body)  # the valid one passes
    with pytest.raises(ValidationError):
        SelfReviewSubmission.model_validate({**body, **bad})
