"""``shared.unit_of_work.clone``: the identity map's copy of a document is a deep copy."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.unit_of_work import clone


def test_a_clone_shares_no_container_with_its_original() -> None:
    at = datetime(2026, 12, 2, tzinfo=UTC)
    original = {
        "_id": "c-1",
        "at": at,
        "tags": ["a", {"deep": [1, 2]}],
        "body": b"raw",
        "odd": {1, 2},  # not BSON-shaped: deep-copied the slow way
    }
    copied = clone(original)
    assert copied == original
    copied["tags"][1]["deep"].append(3)
    copied["tags"].append("b")
    copied["odd"].add(3)
    assert original["tags"] == ["a", {"deep": [1, 2]}]
    assert original["odd"] == {1, 2}
    assert copied["at"] is at  # immutable leaves are shared, not copied
