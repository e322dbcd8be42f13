"""Rubric scoring: veto wins, grade boundaries, pre-filled deductions, reviewer decisions."""

from __future__ import annotations

import pytest

from services.casereview.domain.norms import NORMS
from services.casereview.domain.precheck import PrecheckPolicy, run_prechecks
from services.casereview.domain.rubric import (
    Decision,
    Extra,
    ReviewError,
    Rubric,
    current_rubric,
    load_rubrics,
    propose,
    review_sheet,
)
from tests.casereview.cases import case, clean_file, mutate, without_doc

RUBRIC = current_rubric(load_rubrics())


def extras_deducting(rubric: Rubric, total: float) -> list[Extra]:
    """Reviewer deductions adding up to ``total`` points, spread within dimension weights."""
    out: list[Extra] = []
    left = total
    for d in rubric.dimensions:
        if left <= 0:
            break
        take = min(d.weight, left)
        out.append(Extra(item=d.items[0].code, points=take, comment="test deduction"))
        left -= take
    assert left == 0
    return out


def test_every_precheck_code_prefills_a_rubric_item() -> None:
    assert set(NORMS) <= set(RUBRIC.by_precheck)


def test_clean_file_scores_full_marks() -> None:
    sheet = review_sheet(RUBRIC, [], [], [])
    assert sheet.total == RUBRIC.max_score
    assert sheet.grade == RUBRIC.grades[0].grade


@pytest.mark.parametrize("veto", [v.code for v in RUBRIC.veto_items])
def test_a_veto_item_wins_over_high_scores(veto: str) -> None:
    sheet = review_sheet(RUBRIC, [], [], [Extra(item=veto, comment="事实不清")])
    assert all(d.score == d.weight for d in sheet.dimensions)  # nothing deducted anywhere
    assert sheet.vetoes == [veto]
    assert sheet.total == 0
    assert sheet.grade == RUBRIC.veto_grade


def test_prefilled_veto_confirmed_fails_and_rejected_with_reason_does_not() -> None:
    findings = run_prechecks(
        case(mutate(clean_file(), officers=clean_file()["officers"][:1])), PrecheckPolicy()
    )
    proposals = propose(RUBRIC, findings)
    assert [(p.kind, p.finding_code) for p in proposals] == [("veto", "OFFICERS_TOO_FEW")]
    confirmed = review_sheet(RUBRIC, proposals, [Decision(proposal="P1", action="confirm")], [])
    assert (confirmed.total, confirmed.grade) == (0, RUBRIC.veto_grade)
    rejected = review_sheet(
        RUBRIC,
        proposals,
        [Decision(proposal="P1", action="reject", comment="第二名执法人员见询问笔录签名")],
        [],
    )
    assert rejected.vetoes == [] and rejected.total == RUBRIC.max_score
    assert rejected.rejected[0]["comment"].startswith("第二名")


@pytest.mark.parametrize("threshold", RUBRIC.grades[:-1], ids=lambda t: t.grade)
def test_grade_boundaries_exactly_at_thresholds(threshold) -> None:  # type: ignore[no-untyped-def]
    at = review_sheet(
        RUBRIC, [], [], extras_deducting(RUBRIC, RUBRIC.max_score - threshold.min_score)
    )
    assert at.total == threshold.min_score
    assert at.grade == threshold.grade
    below = review_sheet(
        RUBRIC, [], [], extras_deducting(RUBRIC, RUBRIC.max_score - threshold.min_score + 0.5)
    )
    lower = RUBRIC.grades[RUBRIC.grades.index(threshold) + 1].grade
    assert below.total == threshold.min_score - 0.5
    assert below.grade == lower


def test_findings_prefill_deductions_and_reviewer_overrides_with_comment() -> None:
    data = mutate(without_doc(clean_file(), "送达回证", "结案报告"), publicity=False)
    proposals = propose(RUBRIC, run_prechecks(case(data), PrecheckPolicy()))
    items = {i.code: i for d in RUBRIC.dimensions for i in d.items}
    assert sorted(p.item for p in proposals) == sorted(
        [RUBRIC.by_precheck["DOC_MISSING"]] * 2 + [RUBRIC.by_precheck["PUBLICITY_MISSING"]]
    )
    assert all(p.points == items[p.item].points for p in proposals)
    decisions = [
        Decision(proposal=proposals[0].id, action="confirm"),
        Decision(proposal=proposals[1].id, action="override", points=1, comment="结案报告在副卷"),
        Decision(proposal=proposals[2].id, action="confirm"),
    ]
    sheet = review_sheet(RUBRIC, proposals, decisions, [])
    expected_loss = proposals[0].points + 1 + proposals[2].points
    assert sheet.total == RUBRIC.max_score - expected_loss
    assert [line.action for line in sheet.lines] == ["confirm", "override", "confirm"]


def test_deductions_never_take_a_dimension_below_zero() -> None:
    dim = RUBRIC.dimensions[0]
    extras = [Extra(item=dim.items[0].code, points=dim.weight, comment="x")] * 3
    sheet = review_sheet(RUBRIC, [], [], extras)
    assert sheet.dimensions[0].score == 0
    assert sheet.total == RUBRIC.max_score - dim.weight


def test_submission_problems_are_all_reported() -> None:
    data = mutate(
        clean_file(), publicity=False, recording=False, officers=clean_file()["officers"][:1]
    )
    proposals = propose(RUBRIC, run_prechecks(case(data), PrecheckPolicy()))
    by_code = {p.finding_code: p.id for p in proposals}
    with pytest.raises(ReviewError) as err:
        review_sheet(
            RUBRIC,
            proposals,
            [
                Decision(proposal=by_code["PUBLICITY_MISSING"], action="override", points=1),
                Decision(
                    proposal=by_code["OFFICERS_TOO_FEW"], action="override", points=0, comment="x"
                ),
                Decision(proposal="P99", action="confirm"),
            ],
            [Extra(item="NOPE", comment="x")],
        )
    text = " ".join(err.value.problems)
    assert "needs a comment" in text
    assert "veto item is confirmed or rejected" in text
    assert "P99: no such proposal" in text
    assert f"undecided proposals: {by_code['RECORDING_MISSING']}" in text
    assert "unknown rubric item 'NOPE'" in text


def test_rubric_file_must_be_consistent() -> None:
    raw = RUBRIC.model_dump()
    raw["grades"] = list(reversed(raw["grades"]))
    with pytest.raises(ValueError, match="ordered"):
        Rubric.model_validate(raw)


def test_every_file_with_deductions_is_rectified_and_failing_ones_are_escalated() -> None:
    """Seed 002_8cc9de9d925df07c.txt (瓯海区2022年度行政执法监督工作计划, 分解清单 案卷评查):
    “各行政执法机关对评查反馈函反映的问题予以整改落实，提交书面整改报告” — every problem the
    review names is rectified, not only those of failing files; 不合格 files stay escalated."""
    from services.casereview.domain.rubric import rectification_kind

    clean = review_sheet(RUBRIC, [], [], [])
    deducted = review_sheet(RUBRIC, [], [], extras_deducting(RUBRIC, 5))
    failed = review_sheet(RUBRIC, [], [], [Extra(item=RUBRIC.veto_items[0].code, comment="x")])
    assert not RUBRIC.needs_rectification(deducted.grade)
    assert rectification_kind(RUBRIC, clean) is None
    assert rectification_kind(RUBRIC, deducted) == "deductions"
    assert rectification_kind(RUBRIC, failed) == "failed"
