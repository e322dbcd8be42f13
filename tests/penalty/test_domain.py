"""Pure rules of the penalty service: no servers."""

from __future__ import annotations

import datetime as dt

import pytest

from devtools.demo.catalogue import PROVISIONS as DEMO_PROVISIONS
from services.penalty.domain.anomaly import (
    MonthTotal,
    Thresholds,
    assess_unit_month,
    month_of,
    trailing_months,
    unit_kind,
)
from services.penalty.domain.catalogue import Catalogue, load_catalogue
from services.penalty.domain.filing import (
    assess_penalty,
    check_disproportion,
    days_late,
    derive_status,
    filing_deadline,
    review_refusal,
)
from services.penalty.settings import PenaltySettings
from shared.workcalendar import CST

FOOD_124 = "《中华人民共和国食品安全法》第一百二十四条"  # 五万元以上十万元以下
SHIRONG_24 = "《上海市市容环境卫生管理条例》第二十四条"
SETTINGS = PenaltySettings()
LARGE = SETTINGS.large_fine_thresholds
MITIGATING = SETTINGS.mitigating_circumstances


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# ------------------------------------------------------------------ catalogue, top tier


def test_catalogue_is_versioned_and_covers_the_five_domains(catalogue: Catalogue) -> None:
    assert catalogue.version
    domains = {p.domain for p in catalogue.provisions}
    assert domains == {
        "city_management",
        "market_regulation",
        "environment",
        "construction",
        "food_safety",
    }
    for p in catalogue.provisions:
        assert p.provision.startswith("《") and "第" in p.provision and p.provision.endswith("条")
        for fine_range in p.party_types.values():
            assert fine_range.bands, p.id
            assert fine_range.bands[0].min == fine_range.min
            assert fine_range.bands[-1].max == fine_range.max


def test_catalogue_agrees_with_the_demo_feed(catalogue: Catalogue) -> None:
    """The demo feed decides penalties by these provisions: same text, same ranges."""
    for demo in DEMO_PROVISIONS.values():
        found = catalogue.lookup(demo.text)
        assert found is not None, demo.text
        for party_type, (lo, hi) in demo.ranges.items():
            fine_range = found.party_types[party_type]  # type: ignore[index]
            assert (fine_range.min, fine_range.max) == (lo, hi)


def test_top_tier_at_the_maximum_but_not_one_yuan_below(catalogue: Catalogue) -> None:
    at_max = assess_penalty(catalogue, FOOD_124, "business", 100000, LARGE)
    below = assess_penalty(catalogue, FOOD_124, "business", 99999, LARGE)
    assert at_max.top_tier is True and at_max.classification == "top_tier"
    assert at_max.range_max == 100000 and at_max.band_label == "从重"
    assert below.top_tier is False and below.classification == "not_top_tier"
    assert below.large is False


def test_above_the_legal_maximum_is_top_tier_and_says_so(catalogue: Catalogue) -> None:
    result = assess_penalty(catalogue, FOOD_124, "business", 120000, LARGE, goods_value=5000)
    assert result.top_tier is True and result.above_range is True
    assert result.band == "above_range"


def test_large_top_tier_threshold_depends_on_the_party_type(catalogue: Catalogue) -> None:
    # 市容条例第二十四条: individual max 500 元 (top tier, small); business max 5000 元
    small = assess_penalty(catalogue, SHIRONG_24, "individual", 500, LARGE)
    assert small.top_tier is True and small.large is False
    food = assess_penalty(catalogue, FOOD_124, "business", 100000, {"business": 100000})
    assert food.large is True
    food_hi = assess_penalty(catalogue, FOOD_124, "business", 100000, {"business": 100000.01})
    assert food_hi.large is False


def test_unknown_provision_needs_manual_classification(catalogue: Catalogue) -> None:
    result = assess_penalty(catalogue, "《某某市不存在条例》第九十九条", "business", 5000, LARGE)
    assert result.top_tier is None and result.classification == "unknown_provision"
    assert "人工认定" in result.reason
    no_range = assess_penalty(catalogue, FOOD_124, "individual", 100000, LARGE)
    assert no_range.top_tier is None and no_range.classification == "unknown_party_type"


def test_provision_lookup_ignores_whitespace_and_accepts_ids(catalogue: Catalogue) -> None:
    assert catalogue.lookup(" 《中华人民共和国食品安全法》 第一百二十四条 ") is not None
    assert catalogue.lookup("shipin-124") is catalogue.lookup(FOOD_124)


# ------------------------------------------------------------------ deadline


def test_deadline_day_10_is_on_time_and_day_11_is_late() -> None:
    """Decided 2025-03-03 (CST): 10 days later is 2025-03-13; the 14th is day 11."""
    decided = dt.datetime(2025, 3, 3, 10, 0, tzinfo=CST)
    deadline = filing_deadline(decided, 10)
    assert deadline.last_day == dt.date(2025, 3, 13)
    day_10_late_evening = dt.datetime(2025, 3, 13, 23, 59, 59, tzinfo=CST)
    day_11_early = dt.datetime(2025, 3, 14, 0, 0, 1, tzinfo=CST)
    assert days_late(day_10_late_evening, deadline) == 0
    assert days_late(day_11_early, deadline) == 1
    assert day_10_late_evening < deadline.due <= day_11_early


def test_deadline_counts_china_standard_time_days() -> None:
    """17:30 UTC on 03-02 is 01:30 on 03-03 in Shanghai: the decision day is the 3rd."""
    decided = dt.datetime(2025, 3, 2, 17, 30, tzinfo=dt.UTC)
    assert filing_deadline(decided, 10).last_day == dt.date(2025, 3, 13)


def test_working_day_deadline_skips_the_national_day_holiday() -> None:
    """Decided Fri 2025-09-26. Working days after it: Sun 9-28 (调休上班) 1, 9-29 2, 9-30 3,
    (10-01..10-08 holiday), 10-09 4, 10-10 5, Sat 10-11 (调休上班) 6, 10-13 7, 10-14 8,
    10-15 9, 10-16 10."""
    decided = dt.datetime(2025, 9, 26, 15, 0, tzinfo=CST)
    deadline = filing_deadline(decided, 10, "working")
    assert deadline.last_day == dt.date(2025, 10, 16)
    assert filing_deadline(decided, 10, "calendar", roll_over=False).last_day == dt.date(
        2025, 10, 6
    )


def test_calendar_deadline_ending_on_a_holiday_rolls_to_the_next_working_day() -> None:
    """Seed 000_ea473ff1d8cb02b8.txt (静安区2025年行政执法监督工作计划): “将本单位作出的顶格行政
    处罚案件自作出之日起10日内报区司法局备案” — calendar days. 《民法典》第二百零三条: 期间的最后
    一日是法定休假日的，以法定休假日结束的次日为期间的最后一日. Decided Fri 2025-09-26: day 10 is
    Mon 10-06 (国庆中秋 10-01…10-08), so the last day is Thu 10-09."""
    decided = dt.datetime(2025, 9, 26, 15, 0, tzinfo=CST)
    deadline = filing_deadline(decided, 10)
    assert deadline.last_day == dt.date(2025, 10, 9)
    assert deadline.rolled_from == dt.date(2025, 10, 6)
    assert days_late(dt.datetime(2025, 10, 9, 18, 0, tzinfo=CST), deadline) == 0
    weekend = filing_deadline(dt.datetime(2025, 3, 5, 10, 0, tzinfo=CST), 10)  # day 10: Sat
    assert weekend.last_day == dt.date(2025, 3, 17)
    plain = filing_deadline(dt.datetime(2025, 3, 3, 10, 0, tzinfo=CST), 10)  # day 10: Thu
    assert plain.last_day == dt.date(2025, 3, 13) and plain.rolled_from is None
    assert SETTINGS.filing_deadline_roll_over is True


def test_filing_time_limit_is_in_the_rule_table_with_its_source() -> None:
    """Every time limit of the penalty service says calendar or working days, and why."""
    from services.penalty.domain.filing import TIME_LIMITS

    assert TIME_LIMITS["filing"].calendar == "calendar"
    assert "000_ea473ff1d8cb02b8.txt" in TIME_LIMITS["filing"].source
    assert "第二百零三条" in TIME_LIMITS["filing"].source
    assert TIME_LIMITS["recommendation_reply"].calendar == "calendar"


# ------------------------------------------------------------------ 倍数罚, non-fine penalties


def test_multiple_based_fine_is_judged_against_the_goods_value(catalogue: Catalogue) -> None:
    """《食品安全法》第一百二十四条: 货值金额不足一万元的，并处五万元以上十万元以下罚款；货值金额
    一万元以上的，并处货值金额十倍以上二十倍以下罚款. 货值 15,000 元 → 150,000–300,000 元: a
    200,000 元 fine is lawful and not top-tier; 300,000 元 is the top."""
    lawful = assess_penalty(catalogue, FOOD_124, "business", 200000, LARGE, goods_value=15000)
    assert lawful.top_tier is False and lawful.above_range is False
    assert (lawful.range_min, lawful.range_max) == (150000, 300000)
    assert lawful.range_kind == "multiple" and lawful.band_label == "一般"
    top = assess_penalty(catalogue, FOOD_124, "business", 300000, LARGE, goods_value=15000)
    assert top.top_tier is True and top.above_range is False and "货值金额" in top.reason
    small = assess_penalty(catalogue, FOOD_124, "business", 200000, LARGE, goods_value=5000)
    assert small.above_range is True and small.range_max == 100000  # 货值 < 1 万: fixed range


def test_fine_above_the_fixed_range_without_the_basis_is_not_called_unlawful(
    catalogue: Catalogue,
) -> None:
    """Without 货值金额 a 200,000 元 fine under 第一百二十四条 may be lawful (货值 ≥ 1 万): it needs
    the basis or a person, not an “above the legal maximum” verdict."""
    result = assess_penalty(catalogue, FOOD_124, "business", 200000, LARGE)
    assert result.top_tier is None and result.classification == "basis_needed"
    assert result.above_range is False and "货值金额" in result.reason
    within = assess_penalty(catalogue, FOOD_124, "business", 100000, LARGE)
    assert within.top_tier is True and within.range_kind == "fixed"


def test_illegal_gains_multiple(catalogue: Catalogue) -> None:
    """《消费者权益保护法》第五十六条: 有违法所得的，处以违法所得一倍以上十倍以下的罚款."""
    provision = "《中华人民共和国消费者权益保护法》第五十六条"
    top = assess_penalty(catalogue, provision, "business", 100000, LARGE, illegal_gains=10000)
    assert top.top_tier is True and (top.range_min, top.range_max) == (10000, 100000)
    assert "违法所得" in top.reason


@pytest.mark.parametrize(
    ("measure", "label"),
    [
        ("revoke_license", "吊销许可证件"),
        ("suspend_business", "责令停产停业"),
        ("confiscate_property", "没收非法财物"),
        ("restrict_practice", "限制从业"),
    ],
)
def test_non_fine_top_tier_penalties(catalogue: Catalogue, measure: str, label: str) -> None:
    """《行政处罚法》第九条 lists the kinds of penalty; 吊销许可证件、责令停产停业、没收、
    限制从业 are the heaviest a provision allows: a decision imposing one is top-tier whatever
    the fine."""
    result = assess_penalty(
        catalogue, FOOD_124, "business", 60000, LARGE, measures=[measure],
        top_tier_measures=SETTINGS.top_tier_measures,
    )  # fmt: skip
    assert result.top_tier is True and result.top_tier_measures == [measure]
    assert label in result.reason
    plain = assess_penalty(
        catalogue, FOOD_124, "business", 60000, LARGE, measures=["confiscate_gains"],
        top_tier_measures=SETTINGS.top_tier_measures,
    )  # fmt: skip
    assert plain.top_tier is False  # 没收违法所得 is mandatory, not the discretionary top


def test_a_measure_the_provision_does_not_provide_is_above_the_law(catalogue: Catalogue) -> None:
    """《行政处罚法》第三十八条: 行政处罚没有依据或者实施主体不具有行政主体资格的，行政处罚无效."""
    result = assess_penalty(
        catalogue, SHIRONG_24, "business", 500, LARGE, measures=["revoke_license"],
        top_tier_measures=SETTINGS.top_tier_measures,
    )  # fmt: skip
    assert result.top_tier is True and result.above_range is True
    assert "未规定" in result.reason


# ------------------------------------------------------------------ disproportion


def test_top_tier_despite_mitigating_circumstances_is_disproportionate() -> None:
    finding = check_disproportion(True, ["first_offence", "corrected"], MITIGATING)
    assert finding is not None
    assert finding.mitigating == ["first_offence", "corrected"]
    assert any("首违不罚" in r for r in finding.reasons)
    assert any("初次违法" in r for r in finding.reasons)


def test_no_disproportion_below_the_top_or_without_mitigation() -> None:
    assert check_disproportion(False, ["first_offence", "minor"], MITIGATING) is None
    assert check_disproportion(True, ["repeat_offence", "serious_harm"], MITIGATING) is None
    assert check_disproportion(True, [], MITIGATING) is None


def test_aggravating_circumstances_do_not_clear_the_flag_but_are_shown() -> None:
    finding = check_disproportion(True, ["repeat_offence", "minor", "corrected"], MITIGATING)
    assert finding is not None
    assert finding.aggravating == ["repeat_offence"]
    assert any("第三十三条" in r for r in finding.reasons)
    assert any("屡教不改" in r for r in finding.reasons)


# ------------------------------------------------------------------ anomalies

THRESHOLDS = Thresholds(
    history_months=3,
    min_history_months=2,
    own_growth=1.0,
    peer_ratio=3.0,
    min_peers=3,
    min_amount=10000,
)
HISTORY = {
    "2025-01": MonthTotal(total=10000, count=2),
    "2025-02": MonthTotal(total=20000, count=3),
    "2025-03": MonthTotal(total=30000, count=4),
}


def test_own_growth_threshold_on_its_edge() -> None:
    """History Jan–Mar 2025: 10,000 + 20,000 + 30,000 = 60,000 元 over 3 months → baseline
    20,000 元. April 40,000 元: growth = (40,000 − 20,000) / 20,000 = 1.00 = threshold 100%
    → anomalous. April 39,999 元: (39,999 − 20,000) / 20,000 = 0.99995 < 1 → not."""
    at_edge = assess_unit_month(
        "310106-cgzf", "2025-04", MonthTotal(total=40000, count=5), HISTORY, [], THRESHOLDS
    )
    own = at_edge.rules[0]
    assert own.rule == "own_history" and own.applicable
    assert own.baseline == pytest.approx(20000) and own.value == pytest.approx(1.0)
    assert at_edge.anomalous and own.triggered
    assert "20,000 元" in at_edge.explanation and "100.0%" in at_edge.explanation
    below = assess_unit_month(
        "310106-cgzf", "2025-04", MonthTotal(total=39999, count=5), HISTORY, [], THRESHOLDS
    )
    assert below.rules[0].value == pytest.approx(0.99995)
    assert not below.anomalous


def test_peer_ratio_threshold_on_its_edge() -> None:
    """Peers in April: 10,000, 20,000 and 30,000 元 → mean 60,000 / 3 = 20,000 元.
    60,000 元 is 60,000 / 20,000 = 3.00 × = threshold 3 → anomalous; 59,999 元 → 2.99995 ×."""
    peers = [MonthTotal(total=t, count=1) for t in (10000, 20000, 30000)]
    at_edge = assess_unit_month(
        "u", "2025-04", MonthTotal(total=60000, count=3), {}, peers, THRESHOLDS
    )
    peer = at_edge.rules[1]
    assert peer.applicable and peer.triggered and peer.value == pytest.approx(3.0)
    assert peer.baseline == pytest.approx(20000)
    assert at_edge.anomalous and not at_edge.rules[0].applicable
    below = assess_unit_month(
        "u", "2025-04", MonthTotal(total=59999, count=3), {}, peers, THRESHOLDS
    )
    assert not below.anomalous
    assert "3.00 倍" in at_edge.explanation


def test_small_months_and_thin_data_are_never_anomalous() -> None:
    """Baseline (1,000 + 1,000 + 1,000) / 3 = 1,000 元; 9,999 元 is +899.9% but under the
    10,000 元 floor. Two peers only (min 3): no peer comparison at all."""
    history = {m: MonthTotal(total=1000, count=1) for m in ("2025-01", "2025-02", "2025-03")}
    peers = [MonthTotal(total=100, count=1), MonthTotal(total=100, count=1)]
    result = assess_unit_month(
        "u", "2025-04", MonthTotal(total=9999, count=9), history, peers, THRESHOLDS
    )
    assert not result.anomalous
    assert result.rules[0].value == pytest.approx(8.999)
    assert not result.rules[1].applicable
    one_month = assess_unit_month(
        "u",
        "2025-04",
        MonthTotal(total=50000, count=2),
        {"2025-03": HISTORY["2025-03"]},
        [],
        THRESHOLDS,
    )
    assert not one_month.rules[0].applicable  # 1 month with fines < min_history_months 2


def test_months_and_unit_kinds() -> None:
    assert trailing_months("2025-02", 3) == ["2024-11", "2024-12", "2025-01"]
    assert month_of(dt.datetime(2025, 3, 31, 16, 30, tzinfo=dt.UTC)) == "2025-04"  # CST
    assert unit_kind("310106-cgzf") == unit_kind("310101-cgzf") == "city_management"
    assert unit_kind("310106-st01-zhzf") == "street_enforcement"


# ------------------------------------------------------------------ status, review


def test_status_follows_the_facts_in_any_order() -> None:
    assert (
        derive_status(decided=False, top_tier=None, filed=True, missing=False, review_status=None)
        == "filed"
    )
    assert (
        derive_status(decided=True, top_tier=None, filed=False, missing=False, review_status=None)
        == "classification_needed"
    )
    assert (
        derive_status(decided=True, top_tier=True, filed=False, missing=True, review_status=None)
        == "missing"
    )
    assert (
        derive_status(decided=True, top_tier=False, filed=False, missing=False, review_status=None)
        == "not_required"
    )


def test_review_needs_a_filing_to_accept_but_not_to_recommend() -> None:
    assert review_refusal("filed", "accept") is None
    refusal = review_refusal("missing", "accept")
    assert refusal is not None and "missing" in refusal
    assert review_refusal("missing", "recommendation") is None
    assert review_refusal("awaiting_filing", "decision") is not None
