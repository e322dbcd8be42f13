"""The penalty service's aggregates survive their MongoDB document unchanged: no servers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from bson import BSON
from bson.codec_options import CodecOptions

from services.penalty.domain.anomaly import RuleResult
from services.penalty.domain.filing import DisproportionFinding, TopTierAssessment
from services.penalty.domain.records import Anomaly, Filing, Flag, Letter, Reply
from shared.aggregate import Aggregate
from shared.contracts import CaseDocument

BSON_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)
AT = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


def decided_filing() -> Filing:
    filing = Filing(
        id="C-1",
        district="310106",
        unit="310106-cg",
        unit_kind="cg",
        decided=True,
        provision="《中华人民共和国食品安全法》第一百二十四条",
        party_type="business",
        party_name="某某公司",
        fine=100000.0,
        measures=["revoke_licence"],
        decided_at=AT,
        month="2025-03",
        circumstances=["first_offence", "corrected"],
        deadline_last_day="2025-03-14",
        deadline_due=AT + dt.timedelta(days=10),
        filed=True,
        filed_at=AT + dt.timedelta(days=12),
        filed_via="api",
        documents=[CaseDocument(kind="decision", date=dt.date(2025, 3, 4))],
        late=True,
        days_late=2,
        disproportion=DisproportionFinding(
            mitigating=["first_offence"], aggravating=[], reasons=["顶格处罚"]
        ),
        review_status="recommendation_issued",
        letters=["C-1-L1"],
        flags=["late_filing", "disproportion"],
        updated_at=AT,
    )
    filing.assess(
        TopTierAssessment(
            classification="top_tier",
            top_tier=True,
            range_min=50000,
            range_max=100000,
            range_kind="fixed",
            large=True,
            reason="达到上限",
        )
    )
    filing.refresh(AT)
    return filing


AGGREGATES: list[Aggregate] = [
    decided_filing(),
    Filing(id="C-2", district="310106", unit="310106-cg", unit_kind="cg"),  # filed, undecided
    Flag(
        id="late_filing:C-1",
        kind="late_filing",
        case_id="C-1",
        district="310106",
        unit="310106-cg",
        reasons=["逾期 2 日"],
        evidence={"days_late": 2, "deadline_last_day": "2025-03-14"},
        lead_id="lead-1",
        raised_at=AT,
    ),
    Letter(
        id="C-1-L1",
        case_id="C-1",
        district="310106",
        unit="310106-cg",
        kind="recommendation",
        title="行政执法监督建议书",
        issued_by="bureau",
        issued_at=AT,
        opinion="请说明理由",
        reply_due=AT + dt.timedelta(days=15),
        status="replied",
        reply=Reply(by="310106-cg", content="已说明", at=AT, late=False),
    ),
    Anomaly(
        id="310106-cg:2025-03",
        unit="310106-cg",
        unit_kind="cg",
        district="310106",
        month="2025-03",
        total=300000.0,
        count=3,
        anomalous=True,
        rules=[
            RuleResult(
                rule="peers",
                applicable=True,
                triggered=True,
                baseline=100000.0,
                value=3.0,
                threshold=2.0,
                explanation="3 倍",
            )
        ],
        explanation="异常",
        ever_anomalous=True,
        lead_id="lead-2",
        detected_at=AT,
        updated_at=AT,
    ),
]


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: f"{type(a).__name__}:{a.id}")
def test_round_trip(aggregate: Aggregate) -> None:
    doc = aggregate.to_doc()
    assert doc["_id"] == aggregate.id and "id" not in doc
    assert type(aggregate).from_doc(doc) == aggregate
    stored = BSON.encode(doc).decode(codec_options=BSON_OPTIONS)  # as MongoDB gives it back
    assert type(aggregate).from_doc(stored) == aggregate


def test_filing_document_keeps_its_shape() -> None:
    doc = decided_filing().to_doc()
    assert doc["documents"] == [{"kind": "decision", "date": "2025-03-04"}]  # storable JSON
    assert doc["status"] == "recommendation_issued"
    assert doc["disproportion"]["mitigating"] == ["first_offence"]
    assert doc["top_tier"] is True and doc["priority_review"] is True


def test_a_stored_document_without_the_later_fields_loads() -> None:
    """A filing recorded before its decision (older documents lack the decision fields)."""
    stored = {
        "_id": "C-3",
        "decided": False,
        "district": "310106",
        "unit": "310106-cg",
        "unit_kind": "cg",
        "top_tier": None,
        "flags": [],
        "filed": True,
        "filed_at": AT,
        "filed_via": "event",
        "documents": [{"kind": "decision", "date": None}],
        "status": "filed",
        "updated_at": AT,
    }
    filing = Filing.from_doc(stored)
    assert filing.filed and filing.fine is None and filing.letters == []
    assert {k: v for k, v in filing.to_doc().items() if k in stored} == stored
