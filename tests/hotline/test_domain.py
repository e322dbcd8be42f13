"""Pure rules of the hotline service: classification, routing, lifecycle, lead detectors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from devtools.demo import catalogue as demo
from services.hotline.domain import lifecycle as lc
from services.hotline.domain.leads import (
    BounceThresholds,
    confirms_violation,
    is_bounce,
    is_case_not_opened,
    is_hotspot,
    is_responsibility_shift,
    place_keys,
    target_keys,
)
from services.hotline.domain.lifecycle import Complaint, TransitionRefused
from services.hotline.domain.matters import Classification, classify, load_matters
from services.hotline.domain.routing import (
    Route,
    RoutingEntry,
    load_routing,
    redispatch_after_return,
    route,
    validate_entry,
)
from services.hotline.settings import HotlineSettings
from shared.city import CITY_BUREAU, load_city
from shared.workcalendar import CST

CITY = load_city()
TABLE = load_matters()
CATALOGUE = {e.key: e for e in load_routing().entries}
JINGAN = CITY.district("310106")
assert JINGAN is not None
STREET = JINGAN.streets[0]
T0 = dt.datetime(2025, 3, 3, 10, tzinfo=CST)
HOUR = dt.timedelta(hours=1)


# ------------------------------------------------------------------ classification


def test_given_category_wins_over_keywords() -> None:
    found = lc_classify("YYWR", "楼下摊贩占道经营")
    assert (found.matter, found.by) == ("YYWR", "category")


def test_unknown_category_falls_back_to_keywords() -> None:
    found = lc_classify("X-99", "楼下流动摊贩占用人行道经营")
    assert (found.matter, found.by) == ("ZDJY", "keywords")
    assert "摊贩" in found.keywords


def test_description_without_any_keyword_stays_unknown() -> None:
    assert lc_classify(None, "咨询社保卡补办流程").matter is None


def test_every_demo_description_is_classified_to_its_matter() -> None:
    """The demo feed's texts are an independent sample of how citizens describe matters."""
    misses = []
    for matter in demo.MATTERS:
        for template in matter.descriptions:
            for when in demo.WHEN:
                for biz in matter.business_kinds or ("某商户",):
                    text = template.format(
                        addr="静安区南京西路100号", biz=f"鑫源{biz}", goods="水果", when=when
                    )
                    if lc_classify(None, text).matter != matter.code:
                        misses.append((matter.code, text))
    assert misses == []


def lc_classify(category: str | None, text: str) -> Classification:
    return classify(TABLE, category, text)


# ------------------------------------------------------------------ routing


def entry(matter: str, district: str = "310106") -> RoutingEntry:
    return CATALOGUE[f"{district}:{matter}"]


def test_seed_catalogue_covers_every_district_and_matter() -> None:
    keys = {(e.district, e.matter) for e in CATALOGUE.values()}
    assert keys == {(d.code, m.code) for d in CITY.districts for m in TABLE.matters}
    assert all(validate_entry(CITY, e) == [] for e in CATALOGUE.values())


def test_delegated_matter_goes_to_the_street_team() -> None:
    r = route(CITY, "310106", STREET.name, "ZDJY", entry("ZDJY"))
    assert (r.unit, r.level, r.street) == (STREET.unit.id, "street", STREET.id)


def test_street_name_without_suffix_is_recognised() -> None:
    r = route(CITY, "310106", STREET.name.removesuffix("街道"), "ZDJY", entry("ZDJY"))
    assert r.unit == STREET.unit.id


def test_district_level_matter_goes_to_the_department() -> None:
    r = route(CITY, "310106", STREET.name, "YYWR", entry("YYWR"))
    assert (r.unit, r.level, r.matter_level) == ("310106-sthj", "district", "district")


def test_street_exception_overrides_delegation() -> None:
    r = route(CITY, "310101", "外滩街道", "ZDJY", entry("ZDJY", "310101"))
    assert (r.unit, r.level) == ("310101-cgzf", "district")


@pytest.mark.parametrize(
    ("district", "street", "matter", "expected"),
    [
        ("310106", STREET.name, None, "310106-sfj"),  # matter unknown
        ("310106", None, "ZDJY", "310106-sfj"),  # delegated but street unknown
        ("310106", "不存在街道", "ZDJY", "310106-sfj"),
        ("310199", STREET.name, "ZDJY", CITY_BUREAU),  # district unknown
    ],
)
def test_unknown_matter_or_place_goes_to_triage(
    district: str, street: str | None, matter: str | None, expected: str
) -> None:
    e = CATALOGUE.get(f"{district}:{matter}")
    r = route(CITY, district, street, matter, e)
    assert (r.unit, r.level) == (expected, "triage")


def test_matter_missing_from_catalogue_goes_to_triage() -> None:
    r = route(CITY, "310106", STREET.name, "ZDJY", None)
    assert (r.unit, r.level) == ("310106-sfj", "triage")


def test_return_goes_back_to_the_catalogue_unit_or_to_triage() -> None:
    planned = route(CITY, "310106", STREET.name, "ZDJY", entry("ZDJY"))
    assert redispatch_after_return(CITY, planned, "310106-cgzf", "310106").unit == STREET.unit.id
    back = redispatch_after_return(CITY, planned, STREET.unit.id, "310106")
    assert (back.unit, back.level) == ("310106-sfj", "triage")


def test_entry_validation_names_foreign_units() -> None:
    bad = RoutingEntry(district="310106", matter="ZDJY", level="district", unit="310101-cgzf")
    assert validate_entry(CITY, bad)
    bad_street = RoutingEntry(
        district="310106", matter="ZDJY", level="street", unit="310106-cgzf",
        streets={"310101-st01": "310106-cgzf"},
    )  # fmt: skip
    assert any("street" in p for p in validate_entry(CITY, bad_street))


# ------------------------------------------------------------------ lifecycle


def complaint(**over: Any) -> Complaint:
    base: dict[str, Any] = {
        "id": "GD1",
        "district": "310106",
        "address": "静安区南京西路100号",
        "description": "摊贩占道",
        "complainant": {"name": "王伟", "phone": "13800000000"},
        "received_at": T0,
        "due": T0 + dt.timedelta(days=10),
        "matter": "ZDJY",
    }
    return Complaint.model_validate({**base, **over})


def street_route(unit: str = "310106-st01-zhzf") -> Route:
    return Route(unit=unit, level="street", reason="派单目录", matter_level="street")


def dispatched(unit: str = "310106-st01-zhzf") -> Complaint:
    c = complaint()
    lc.dispatch(c, street_route(unit), by="hotline", at=T0, ack_due=T0 + 2 * HOUR)
    return c


def acknowledged(unit: str = "310106-st01-zhzf") -> Complaint:
    c = dispatched(unit)
    lc.acknowledge(c, unit=unit, by="officer", at=T0 + HOUR)
    return c


def with_extension() -> Complaint:
    c = acknowledged()
    lc.request_extension(
        c, unit=c.unit or "", by="o", at=T0 + 2 * HOUR, days=3, reason="需联合执法", max_days=30
    )
    return c


def resolved() -> Complaint:
    c = acknowledged()
    lc.resolve(
        c, unit=c.unit or "", by="o", at=T0 + 3 * HOUR, outcome="已整改", verdict="rectified"
    )
    return c


def test_first_dispatch_routes_and_later_ones_are_hand_overs() -> None:
    c = complaint()
    first = lc.dispatch(c, street_route(), by="hotline", at=T0, ack_due=T0 + HOUR)
    assert (first.verb, c.status, c.handovers, c.dispatch_seq) == ("routed", "dispatched", 0, 1)
    lc.dispatch(c, Route(unit="310106-sfj", level="triage", reason="分拨"), by="h", at=T0,
                ack_due=T0)  # fmt: skip
    assert c.handovers == 0  # the triage queue is not a hand-over
    again = lc.dispatch(c, street_route("310106-cgzf"), by="sfj", at=T0, ack_due=T0)
    assert (again.verb, c.unit, c.handovers, c.dispatch_seq) == ("rerouted", "310106-cgzf", 1, 3)
    assert [e.verb for e in c.timeline] == ["routed", "rerouted", "rerouted"]


def test_acknowledge_by_holder() -> None:
    c = dispatched()
    entry = lc.acknowledge(c, unit="310106-st01-zhzf", by="张三", at=T0 + 3 * HOUR)
    assert (c.status, entry.by, entry.detail["late"]) == ("acknowledged", "张三", True)


def test_return_counts_and_keeps_the_reason() -> None:
    c = acknowledged()
    entry = lc.return_order(c, unit=c.unit or "", by="o", at=T0 + HOUR, reason=" 非本辖区 ")
    assert (c.returns, c.status, entry.reason) == (1, "dispatched", "非本辖区")


def test_extension_request_and_approval_move_the_deadline() -> None:
    c = with_extension()
    assert c.extension is not None and c.extension.status == "pending"
    old_due = c.due
    new_due = T0 + dt.timedelta(days=20)
    entry = lc.decide_extension(
        c, unit="310106-sfj", by="李", at=T0 + 3 * HOUR, approved=True, note=None,
        new_due=new_due, allowed_deciders=("310106-sfj",),
    )  # fmt: skip
    assert (c.due, entry.detail["previous_due"]) == (new_due, old_due)
    assert c.extensions[-1].status == "approved"


def test_refused_extension_keeps_the_deadline() -> None:
    c = with_extension()
    due = c.due
    lc.decide_extension(
        c, unit="310106-sfj", by="李", at=T0 + 3 * HOUR, approved=False, note="理由不足",
        new_due=None, allowed_deciders=("310106-sfj",),
    )  # fmt: skip
    assert c.due == due and c.extension is not None and c.extension.status == "refused"


def test_resolve_then_rate_closes() -> None:
    c = resolved()
    assert (c.status, c.verdict) == ("resolved", "rectified")
    lc.rate(c, by="12345", at=T0 + 5 * HOUR, satisfaction=4)
    assert (c.status, c.satisfaction) == ("closed", 4)
    assert [e.verb for e in c.timeline] == ["routed", "acknowledged", "resolved", "rated"]


Refusal = tuple[str, Callable[[], Complaint], Callable[[Complaint], object], str]

REFUSALS: list[Refusal] = [
    ("dispatch to the same unit", dispatched,
     lambda c: lc.dispatch(c, street_route(), by="h", at=T0, ack_due=T0), "already with"),
    ("dispatch a resolved one", resolved,
     lambda c: lc.dispatch(c, street_route("x"), by="h", at=T0, ack_due=T0), "is resolved"),
    ("acknowledge twice", acknowledged,
     lambda c: lc.acknowledge(c, unit=c.unit or "", by="o", at=T0), "is acknowledged"),
    ("acknowledge by another unit", dispatched,
     lambda c: lc.acknowledge(c, unit="310106-cgzf", by="o", at=T0), "held by"),
    ("return without reason", dispatched,
     lambda c: lc.return_order(c, unit=c.unit or "", by="o", at=T0, reason="  "), "reason"),
    ("return by another unit", dispatched,
     lambda c: lc.return_order(c, unit="310106-cgzf", by="o", at=T0, reason="x"), "held by"),
    ("return a resolved one", resolved,
     lambda c: lc.return_order(c, unit=c.unit or "", by="o", at=T0, reason="x"), "is resolved"),
    ("triage queue returns", lambda: dispatched_triage(),
     lambda c: lc.return_order(c, unit="310106-sfj", by="o", at=T0, reason="x"), "triage"),
    ("extension before acknowledging", dispatched,
     lambda c: lc.request_extension(c, unit=c.unit or "", by="o", at=T0, days=3, reason="x",
                                    max_days=30), "is dispatched"),
    ("extension after the deadline", acknowledged,
     lambda c: lc.request_extension(c, unit=c.unit or "", by="o", at=T0 + dt.timedelta(days=11),
                                    days=3, reason="x", max_days=30), "deadline"),
    ("second pending extension", with_extension,
     lambda c: lc.request_extension(c, unit=c.unit or "", by="o", at=T0, days=3, reason="x",
                                    max_days=30), "already"),
    ("extension too long", acknowledged,
     lambda c: lc.request_extension(c, unit=c.unit or "", by="o", at=T0, days=31, reason="x",
                                    max_days=30), "1 to 30"),
    ("extension without reason", acknowledged,
     lambda c: lc.request_extension(c, unit=c.unit or "", by="o", at=T0, days=3, reason="",
                                    max_days=30), "reason"),
    ("decide without a request", acknowledged,
     lambda c: lc.decide_extension(c, unit="310106-sfj", by="o", at=T0, approved=True, note=None,
                                   new_due=T0, allowed_deciders=("310106-sfj",)), "no extension"),
    ("decide by the unit itself", with_extension,
     lambda c: lc.decide_extension(c, unit=c.unit or "", by="o", at=T0, approved=True, note=None,
                                   new_due=T0, allowed_deciders=("310106-sfj",)), "cannot decide"),
    ("resolve before acknowledging", dispatched,
     lambda c: lc.resolve(c, unit=c.unit or "", by="o", at=T0, outcome="x", verdict=None),
     "is dispatched"),
    ("resolve without outcome", acknowledged,
     lambda c: lc.resolve(c, unit=c.unit or "", by="o", at=T0, outcome="", verdict=None),
     "outcome"),
    ("resolve by another unit", acknowledged,
     lambda c: lc.resolve(c, unit="310106-cgzf", by="o", at=T0, outcome="x", verdict=None),
     "held by"),
    ("resolve twice", resolved,
     lambda c: lc.resolve(c, unit=c.unit or "", by="o", at=T0, outcome="x", verdict=None),
     "is resolved"),
    ("rate before resolving", acknowledged,
     lambda c: lc.rate(c, by="12345", at=T0, satisfaction=5), "is acknowledged"),
    ("rate out of range", resolved,
     lambda c: lc.rate(c, by="12345", at=T0, satisfaction=0), "1 to 5"),
]  # fmt: skip


def dispatched_triage() -> Complaint:
    c = complaint()
    lc.dispatch(c, Route(unit="310106-sfj", level="triage", reason="分拨"), by="h", at=T0,
                ack_due=T0)  # fmt: skip
    return c


@pytest.mark.parametrize(("name", "make", "act", "says"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_invalid_transitions_are_refused_with_a_reason_and_change_nothing(
    name: str, make: Callable[[], Complaint], act: Callable[[Complaint], object], says: str
) -> None:
    c = make()
    before = c.model_dump()
    with pytest.raises(TransitionRefused, match=says):
        act(c)
    assert c.model_dump() == before


def test_overdue_is_marked_once_and_only_when_due_and_open() -> None:
    c = acknowledged()
    assert c.due is not None
    assert lc.mark_overdue(c, stage="resolve", by="h", at=c.due - HOUR) is None
    assert lc.mark_overdue(c, stage="resolve", by="h", at=c.due) is not None
    assert c.overdue and lc.mark_overdue(c, stage="resolve", by="h", at=c.due + HOUR) is None
    assert lc.escalate(c, by="h", at=c.due, days_overdue=5) is not None
    assert lc.escalate(c, by="h", at=c.due, days_overdue=6) is None
    r = resolved()
    assert lc.mark_overdue(r, stage="resolve", by="h", at=T0 + dt.timedelta(days=30)) is None


def test_late_acknowledgement_is_marked_per_dispatch() -> None:
    c = dispatched()
    assert lc.mark_overdue(c, stage="acknowledge", by="h", at=T0 + HOUR) is None
    late = lc.mark_overdue(c, stage="acknowledge", by="h", at=T0 + 2 * HOUR)
    assert late is not None and late.verb == "ack_overdue" and not c.overdue
    lc.dispatch(c, street_route("310106-cgzf"), by="sfj", at=T0 + 3 * HOUR, ack_due=T0 + 5 * HOUR)
    assert not c.ack_late  # a new dispatch has its own clock


def test_approved_extension_after_the_deadline_lifts_overdue() -> None:
    c = with_extension()
    assert c.due is not None
    lc.mark_overdue(c, stage="resolve", by="h", at=c.due)
    lc.decide_extension(
        c, unit="310106-sfj", by="李", at=c.due + HOUR, approved=True, note=None,
        new_due=c.due + dt.timedelta(days=3), allowed_deciders=("310106-sfj",),
    )  # fmt: skip
    assert not c.overdue


# ------------------------------------------------------------------ lead detectors


@pytest.mark.parametrize(
    ("returns", "handovers", "bounce"),
    [(1, 0, False), (2, 0, True), (0, 2, False), (0, 3, True), (1, 2, False)],
)
def test_bounce_edges(returns: int, handovers: int, bounce: bool) -> None:
    assert is_bounce(returns, handovers, BounceThresholds(returns=2, handovers=3)) is bounce


SHIFT_OWNER = "310106-sthj"
SHIFT_STREET = "310106-st02-zhzf"


@pytest.mark.parametrize(
    ("matter_level", "held_by", "to_unit", "to_level", "exceptions", "shift"),
    [
        # the department held its own matter, then the order went to a street team
        ("district", [SHIFT_OWNER, "310106-sfj"], SHIFT_STREET, "street", [], True),
        ("district", [SHIFT_OWNER], SHIFT_STREET, "street", [], True),  # handed over directly
        ("district", ["310106-sfj"], SHIFT_STREET, "street", [], False),  # never held it
        ("street", [SHIFT_OWNER], SHIFT_STREET, "street", [], False),  # delegated (赋权街镇)
        ("district", [SHIFT_OWNER], "310106-cgzf", "district", [], False),  # not to a street
        ("district", [SHIFT_OWNER], SHIFT_STREET, "street", [SHIFT_STREET], False),  # exception
        (None, [SHIFT_OWNER], SHIFT_STREET, "street", [], False),  # matter unknown
    ],
)
def test_responsibility_shift_is_judged_from_the_routing_catalogue(
    matter_level: str | None,
    held_by: list[str],
    to_unit: str,
    to_level: str,
    exceptions: list[str],
    shift: bool,
) -> None:
    """Seed 000_ea473ff1d8cb02b8.txt (静安区2025年行政执法监督工作计划, 一(六)): “是否存在违反规定，
    擅自将本部门的执法事项转交给街镇执行的情况……以属地管理为借口，将本应自身承担的责任转嫁给
    街镇的行为”. The catalogue says whose matter it is; the reason's wording (属地 or not) does not
    matter: a district department's own matter that it held and that then went to a street is it."""
    assert (
        is_responsibility_shift(
            matter_level=matter_level,
            owner=SHIFT_OWNER,
            held_by=held_by,
            to_unit=to_unit,
            to_level=to_level,
            exceptions=exceptions,
        )
        is shift
    )


@pytest.mark.parametrize(("count", "hotspot"), [(2, False), (3, True), (4, True)])
def test_hotspot_edge(count: int, hotspot: bool) -> None:
    assert is_hotspot(count, 3) is hotspot


def test_place_keys_ignore_spacing_punctuation_and_city_prefix() -> None:
    typed = place_keys("上海市静安区 南京西路100号", None)
    assert typed == place_keys("静安区南京西路100号。", None)


def test_target_keys_match_a_case_party_by_credit_code_or_name() -> None:
    keys = target_keys("上海鑫源食品有限公司（91310106MA1FL0XX3K）")
    assert "uscc:91310106MA1FL0XX3K" in keys
    assert "name:上海鑫源食品有限公司" in keys
    assert target_keys(None) == [] and target_keys("  ") == []


RESOLVED_AT = T0
DAYS = 30


@pytest.mark.parametrize(
    ("now_days", "case_days", "lead"),
    [
        (DAYS - 1, None, False),  # not yet due
        (DAYS, None, True),  # due, no case
        (DAYS, DAYS, False),  # the case arrived on the last day
        (DAYS + 1, DAYS + 1, True),  # the case came too late
        (DAYS, -3, False),  # a case already open before the complaint was resolved
    ],
)
def test_case_not_opened_edges(now_days: int, case_days: int | None, lead: bool) -> None:
    now = RESOLVED_AT + dt.timedelta(days=now_days)
    cases = [] if case_days is None else [RESOLVED_AT + dt.timedelta(days=case_days)]
    assert is_case_not_opened(RESOLVED_AT, now, cases, DAYS) is lead


def test_violation_confirmed_by_verdict_or_wording() -> None:
    words = ["属实", "违法行为成立"]
    assert confirms_violation("violation_confirmed", "", words)
    assert not confirms_violation("no_violation", "反映情况属实", words)  # the verdict wins
    assert confirms_violation(None, demo.OUTCOME_CONFIRMED[0], words)
    assert not any(confirms_violation(None, t, words) for t in demo.OUTCOME_RECTIFIED)


@pytest.mark.parametrize(
    ("outcome", "confirmed"),
    [
        ("经核查，反映情况不属实", False),
        ("经核查，反映情况部分属实，已督促整改", False),
        ("经多次上门，无法核实反映情况是否属实", False),
        ("经核查，违法行为不成立", False),
        ("反映情况并非属实", False),
        ("经核查，反映情况属实，已立案查处", True),
        ("经核查，部分属实，其中占道经营问题属实", True),  # one part is confirmed outright
    ],
)
def test_negated_or_uncertain_wording_does_not_confirm_a_violation(
    outcome: str, confirmed: bool
) -> None:
    """应立尽立 (seed 000_ea473ff1d8cb02b8.txt, 静安区2025年行政执法监督工作计划: “12345政务服务
    热线高频投诉执法问题，开展行政执法监督”): only a confirmed violation (属实) obliges the unit to
    open a case. “不属实”“部分属实”“无法核实……是否属实” contain the characters 属实 but confirm
    nothing; they must not raise a CASE_NOT_OPENED lead."""
    words = HotlineSettings().violation_keywords
    negations = HotlineSettings().violation_negations
    assert confirms_violation(None, outcome, words, negations) is confirmed


# ------------------------------------------------------------------ reclassification (row 4)


def test_reclassification_changes_the_matter_and_deadline_and_keeps_the_rest() -> None:
    """12345 re-classifies an order: new matter, recomputed deadline, overdue cleared when the
    new deadline is later; returns, hand-overs and the timeline so far are kept."""
    c = acknowledged()
    lc.mark_overdue(c, stage="resolve", by="h", at=c.due)  # type: ignore[arg-type]
    before = (c.returns, c.handovers, len(c.timeline))
    new_due = T0 + dt.timedelta(days=30)
    entry = lc.reclassify(
        c, matter="YYWR", matter_name="油烟污染", classified_by="category", category="YYWR",
        by="12345", at=T0 + 2 * HOUR, due=new_due, limit_days=20,
    )  # fmt: skip
    assert entry is not None and entry.verb == "reclassified"
    assert entry.detail["from_matter"] == "ZDJY" and entry.detail["to_matter"] == "YYWR"
    assert (c.matter, c.matter_name, c.category, c.due, c.limit_days) == (
        "YYWR", "油烟污染", "YYWR", new_due, 20,
    )  # fmt: skip
    assert not c.overdue
    assert (c.returns, c.handovers, len(c.timeline)) == (before[0], before[1], before[2] + 1)
    same = lc.reclassify(
        c, matter="YYWR", matter_name="油烟污染", classified_by="category", category="YYWR",
        by="12345", at=T0 + 3 * HOUR, due=new_due, limit_days=20,
    )  # fmt: skip
    assert same is None  # the same matter again changes nothing


def test_a_closed_complaint_cannot_be_reclassified() -> None:
    c = resolved()
    with pytest.raises(TransitionRefused, match="is resolved; re-classification needs"):
        lc.reclassify(
            c, matter="YYWR", matter_name="油烟污染", classified_by="category", category="YYWR",
            by="12345", at=T0 + 4 * HOUR, due=T0, limit_days=1,
        )  # fmt: skip


def test_reclassified_needs_a_category() -> None:
    from shared.contracts import WorkOrderUpdated

    with pytest.raises(ValueError, match="reclassified work order needs its new category"):
        WorkOrderUpdated.model_validate(
            {"order_id": "X", "action": "reclassified", "by_unit": "12345", "at": T0}
        )
    ok = WorkOrderUpdated.model_validate(
        {"order_id": "X", "action": "reclassified", "by_unit": "12345", "at": T0, "category": "Q"}
    )
    assert ok.category == "Q"
