"""重复件 (MISSION row 12): the same problem at the same place within a window under a new
order id is linked to the first; pure rules, no servers."""

from __future__ import annotations

import datetime as dt

import pytest

from services.hotline.domain import lifecycle as lc
from services.hotline.domain.duplicates import (
    CANDIDATE_CAP,
    DuplicateThresholds,
    address_similarity,
    candidate,
    find_original,
    remember,
    similarity,
    street_key,
)
from services.hotline.domain.lifecycle import Complaint, TransitionRefused
from shared.workcalendar import CST

T0 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=CST)
RULES = DuplicateThresholds(window_days=2, address_similarity=0.75, text_similarity=0.5)
FIRST = candidate("GD-1", T0, "上海市静安区南京西路1000号", "南京西路1000号门口流动摊贩占道卖水果")


def test_similarity_is_one_for_equal_texts_and_zero_for_unrelated() -> None:
    assert similarity("南京西路", "南京西路") == 1.0
    assert similarity("南京西路", "延安中路") == 0.0
    assert similarity("", "南京西路") == 0.0


def test_addresses_with_other_house_numbers_are_other_places() -> None:
    """1000号 and 1002号 share most of their wording but are different buildings."""
    assert similarity("静安区南京西路1000号", "静安区南京西路1002号") > 0.75
    assert address_similarity("静安区南京西路1000号", "静安区南京西路1002号") == 0.0
    assert address_similarity("静安区南京西路1000号", "静安区南京西路1000号门口") > 0.75


def test_a_repeated_report_within_the_window_is_linked_to_the_first() -> None:
    """Row 12: same street and matter (the caller's bucket), similar address and text."""
    again = candidate(
        "GD-2",
        T0 + dt.timedelta(hours=5),
        "静安区 南京西路1000号门口",
        "南京西路1000号门口有流动摊贩占道卖水果，请处理",
    )
    match = find_original(again, [FIRST], RULES)
    assert match is not None and match.original == "GD-1"
    assert match.address_similarity >= 0.75 and match.text_similarity >= 0.5


@pytest.mark.parametrize(
    ("order_id", "hours", "address", "text"),
    [
        ("late", 49, "南京西路1000号", "南京西路1000号门口流动摊贩占道卖水果"),  # outside window
        ("other-no", 1, "南京西路1002号", "南京西路1002号门口流动摊贩占道卖水果"),  # another house
        ("other-problem", 1, "南京西路1000号", "店铺夜间装修噪音扰民影响休息"),  # another problem
        ("earlier", -1, "南京西路1000号", "南京西路1000号门口流动摊贩占道卖水果"),  # before it
    ],
)
def test_no_link_outside_the_window_at_another_place_or_for_another_problem(
    order_id: str, hours: int, address: str, text: str
) -> None:
    new = candidate(order_id, T0 + dt.timedelta(hours=hours), address, text)
    assert find_original(new, [FIRST], RULES) is None


def test_the_first_original_wins_and_a_complaint_never_matches_itself() -> None:
    second = candidate("GD-0", T0 + dt.timedelta(hours=1), FIRST.address, FIRST.text)
    new = candidate("GD-3", T0 + dt.timedelta(hours=2), FIRST.address, FIRST.text)
    match = find_original(new, [second, FIRST], RULES)
    assert match is not None and match.original == "GD-1"
    assert find_original(FIRST, [FIRST], RULES) is None


def test_candidates_forget_what_left_the_window_and_stay_bounded() -> None:
    later = candidate("GD-9", T0 + dt.timedelta(days=3), FIRST.address, FIRST.text)
    assert [c.id for c in remember([FIRST], later, 2)] == ["GD-9"]
    assert [c.id for c in remember([FIRST], FIRST, 2)] == ["GD-1"]  # added once
    many = [candidate(f"GD-{i}", T0 + dt.timedelta(seconds=i), "x1号", "y") for i in range(300)]
    kept: list = []
    for c in many:
        kept = remember(kept, c, 2)
    assert len(kept) == CANDIDATE_CAP and kept[-1].id == "GD-299"


def test_street_key_prefers_the_street_id_then_the_text() -> None:
    assert street_key("310106003", "南京西路街道") == "street:310106003"
    assert street_key(None, " 南京西路 街道") == "street:南京西路街道"
    assert street_key(None, None) == street_key(None, " ") == "street:?"


def _complaint(order_id: str) -> Complaint:
    return Complaint(
        id=order_id,
        district="310106",
        address="南京西路1000号",
        description="占道",
        complainant=lc.Complainant(name="王", phone="13800138000"),
        received_at=T0,
    )


def test_both_complaints_show_the_link_once() -> None:
    """Row 12: shown on both complaints (a field and a timeline entry)."""
    original, dup = _complaint("GD-1"), _complaint("GD-2")
    entry = lc.link_duplicate(dup, original="GD-1", by="hotline", at=T0, detail={"x": 1})
    assert dup.duplicate_of == "GD-1" and entry.detail == {"original": "GD-1", "x": 1}
    noted = lc.note_duplicate(original, duplicate="GD-2", by="hotline", at=T0)
    assert noted is not None and noted.verb == "duplicate_linked"
    assert original.duplicates == ["GD-2"]
    assert lc.note_duplicate(original, duplicate="GD-2", by="hotline", at=T0) is None
    assert [e.verb for e in original.timeline] == ["duplicate_linked"]
    with pytest.raises(TransitionRefused):
        lc.link_duplicate(dup, original="GD-3", by="hotline", at=T0, detail={})
    with pytest.raises(TransitionRefused):
        lc.link_duplicate(original, original="GD-1", by="hotline", at=T0, detail={})
