"""Contract models keep unknown fields only when their names can be stored."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from shared.contracts import CaseDocument, PenaltyDecided

DECIDED = {
    "case_id": "C-1",
    "unit": "310101-cgzf",
    "district": "310101",
    "provision": "《上海市市容环境卫生管理条例》第四十九条",
    "party_type": "business",
    "fine": 50000,
}


def test_unknown_fields_are_kept() -> None:
    doc = CaseDocument(kind="处罚决定书", note={"page": 3}, pages=[{"n": 1}])  # type: ignore[call-arg]
    assert doc.model_extra == {"note": {"page": 3}, "pages": [{"n": 1}]}


@pytest.mark.parametrize(
    "extra",
    [
        {"$where": 1},
        {"a.b": 1},
        {"nested": {"k\x00": 1}},
        {"listed": [{"$set": 2}]},
        {"x" * 101: 1},
    ],
    ids=["dollar", "dot", "nul-nested", "dollar-in-list", "too-long"],
)
def test_unstorable_field_names_are_refused_with_the_name(extra: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="cannot be stored"):
        CaseDocument(kind="x", **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:01+00:02", "1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z"]
)
def test_times_outside_what_can_be_stored_are_refused(when: str) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        PenaltyDecided.model_validate({**DECIDED, "decided_at": when})


def test_an_ordinary_time_with_an_offset_is_kept() -> None:
    decided = PenaltyDecided.model_validate({**DECIDED, "decided_at": "2025-03-03T09:00:00+08:00"})
    assert decided.decided_at == dt.datetime(2025, 3, 3, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "extra",
    [
        {"count": 2**63},
        {"nested": {"n": -(2**63) - 1}},
        {"listed": [[1, -460337278443289854345216]]},
    ],
    ids=["top", "nested", "in-list"],
)
def test_whole_numbers_beyond_64_bits_are_refused(extra: dict[str, object]) -> None:
    """BSON stores 64-bit integers: a bigger kept number failed the write with a 500 (the
    fuzzer's ``POST /v1/penalty/filings`` with -460337278443289854345216 in a document)."""
    with pytest.raises(ValidationError, match="beyond 64-bit"):
        CaseDocument(kind="x", **extra)  # type: ignore[arg-type]


def test_the_largest_storable_numbers_and_booleans_are_kept() -> None:
    doc = CaseDocument(kind="x", top=2**63 - 1, bottom=-(2**63), flag=True)  # type: ignore[call-arg]
    assert doc.model_extra == {"top": 2**63 - 1, "bottom": -(2**63), "flag": True}
