"""Contract models keep unknown fields only when their names can be stored."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.contracts import CaseDocument


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
