"""The casereview service's aggregates survive their MongoDB document unchanged: no servers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from bson import BSON
from bson.codec_options import CodecOptions

from services.casereview.domain.norms import Finding, Severity
from services.casereview.domain.records import (
    Answer,
    Campaign,
    Case,
    IgnoredRevision,
    Issue,
    Rectification,
    Review,
    SelfReview,
    Verdict,
)
from services.casereview.domain.rubric import DimensionScore, Line, Proposal, ScoreSheet
from services.casereview.domain.sampling import Reviewer
from shared.aggregate import Aggregate

BSON_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)
AT = dt.datetime(2025, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
FINDING = Finding(
    code="DOC_MISSING",
    severity=Severity.MAJOR,
    message="缺少送达回证",
    rule="rule",
    source="seed",
    evidence={"missing": ["送达回证"], "closed": dt.date(2025, 4, 10)},
)
SHEET = ScoreSheet(
    rubric_version="2025-v1",
    lines=[
        Line(
            item="A1",
            text="文书齐全",
            dimension="D1",
            kind="deduction",
            points=2.0,
            origin="precheck",
            action="confirm",
            finding_code="DOC_MISSING",
        )
    ],
    dimensions=[DimensionScore(code="D1", name="程序", weight=50, deducted=2, score=48)],
    vetoes=[],
    total=98.0,
    max_score=100.0,
    grade="优秀",
)


SELF_REVIEW = SelfReview(
    unit="310106-cgzf",
    conclusion="基本规范",
    problems=["送达回证缺失"],
    score=88.5,
    submitted_at=AT,
    received_at=AT,
)


def case() -> Case:
    return Case(
        id="310106-cgzf-2025-000001",
        district="310106",
        unit="310106-cgzf",
        procedure="general",
        matter="占道经营",
        closed_on="2025-04-10",
        decision={"kind": "fine", "fine": 2000.0, "confiscation": 0.0},
        file={"case_id": "310106-cgzf-2025-000001", "dates": {"closed": "2025-04-10"}},
        file_hash="ab" * 32,
        findings=[FINDING],
        finding_codes=["DOC_MISSING"],
        status="rectification_required",
        received_at=AT,
        event_id="ev-1",
        revision=2,
        campaign_id="camp-1",
        review_id="camp-1:310106-cgzf-2025-000001",
        reviewer_id="R1",
        grade="合格",
        score=80.0,
        rectification_id="rect:camp-1:310106-cgzf-2025-000001",
        rectification_status="open",
        rectification_deadline=AT,
        ignored_revisions=[IgnoredRevision(event_id="ev-2", file_hash="cd" * 32, at=AT)],
        self_review=SELF_REVIEW,
        updated_at=AT,
    )


def review() -> Review:
    return Review(
        id="camp-1:310106-cgzf-2025-000001",
        campaign_id="camp-1",
        case_id="310106-cgzf-2025-000001",
        unit="310106-cgzf",
        district="310106",
        closed_on="2025-04-10",
        reviewer_id="R1",
        reviewer_unit="310101-sfj",
        status="scored",
        rubric_version="2025-v1",
        proposals=[
            Proposal(
                id="P1",
                item="A1",
                kind="deduction",
                points=2.0,
                finding_code="DOC_MISSING",
                message="缺少送达回证",
                evidence={"closed": dt.date(2025, 4, 10)},
            )
        ],
        self_review=SELF_REVIEW,
        assigned_at=AT,
        sheet=SHEET,
        grade="优秀",
        score=98.0,
        failed=False,
        defects=["A1"],
        comment="",
        scored_at=AT,
        scored_by="R1",
    )


AGGREGATES: list[Aggregate] = [
    case(),
    Campaign(
        id="camp-1",
        name="2025 二季度",
        period_from="2025-04-01",
        period_to="2025-06-30",
        units=["310106-cgzf"],
        percent="12.5",
        seed="s",
        algorithm="sha256-v1",
        population=[("310106-cgzf-2025-000001", "310106-cgzf")],
        population_size=1,
        population_hash="00" * 32,
        reviewers=[Reviewer(id="R1", name="评查员", unit="310101-sfj", district="310101")],
        directory_version="d1",
        rubric_version="2025-v1",
        sample=["310106-cgzf-2025-000001"],
        assignments={"310106-cgzf-2025-000001": "R1"},
        created_at=AT,
    ),
    review(),
    Rectification(
        id="rect:camp-1:310106-cgzf-2025-000001",
        case_id="310106-cgzf-2025-000001",
        review_id="camp-1:310106-cgzf-2025-000001",
        campaign_id="camp-1",
        unit="310106-cgzf",
        district="310106",
        kind="deductions",
        grade="优秀",
        score=98.0,
        issues=[Issue(item="A1", text="文书齐全", points=2.0)],
        status="answered",
        round=2,
        required_at=AT,
        deadline=AT,
        overdue=True,
        overdue_at=AT,
        answered_at=AT,
        answers=[Answer(unit="310106-cgzf", measures="补正", at=AT, round=2, late=True)],
        verdicts=[Verdict(by="bureau", accepted=False, comment="不完整", at=AT, round=1)],
    ),
]


def stored(doc: dict[str, Any]) -> dict[str, Any]:
    """What MongoDB would give back (raises on a value BSON cannot hold, e.g. a date)."""
    return BSON.encode(doc).decode(codec_options=BSON_OPTIONS)


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: f"{type(a).__name__}:{a.id}")
def test_round_trip(aggregate: Aggregate) -> None:
    doc = aggregate.to_doc()
    assert doc["_id"] == aggregate.id and "id" not in doc
    assert type(aggregate).from_doc(doc) == aggregate
    assert type(aggregate).from_doc(stored(doc)) == aggregate  # through BSON as well


def test_values_bson_cannot_hold_are_stored_as_json() -> None:
    doc = case().to_doc()
    assert doc["findings"][0]["severity"] == "major"
    assert doc["findings"][0]["evidence"]["closed"] == "2025-04-10"
    assert review().to_doc()["proposals"][0]["evidence"] == {"closed": "2025-04-10"}


def test_an_older_rectification_without_kind_is_a_failed_one() -> None:
    doc = AGGREGATES[3].to_doc()
    del doc["kind"]
    assert Rectification.from_doc(doc).kind == "failed"
