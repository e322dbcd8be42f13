"""Pure rules of the inspection service: each one fires, and must not fire, where it should."""

from __future__ import annotations

import datetime as dt

from services.inspection.domain.rules import (
    Certificate,
    Plan,
    RepeatThresholds,
    Visit,
    certification_rate,
    check_code,
    check_officer,
    check_plan,
    check_repeats,
    correction_rate,
    crossed,
    distinct_visits,
    window_bucket,
)
from shared.workcalendar import CST

UNIT = "310101-scjg"
FIRM = "91310101MA1FL0AB3X"
OTHER = "91310101MA1FL0CD5Y"
AT = dt.datetime(2026, 4, 10, 10, 0, tzinfo=CST)


def plan(**over: object) -> Plan:
    base: dict[str, object] = {
        "plan_id": "P-1",
        "unit": UNIT,
        "period_start": dt.date(2026, 4, 1),
        "period_end": dt.date(2026, 6, 30),
        "enterprises": [FIRM],
        "sectors": ["food"],
        "double_random": True,
        "filed_at": dt.datetime(2026, 3, 20, tzinfo=CST),
    }
    return Plan.model_validate({**base, **over})


# ------------------------------------------------------------------ 未备案检查


def test_an_inspection_inside_a_filed_plan_is_planned() -> None:
    assert check_plan(UNIT, FIRM, None, AT, [plan()]) is None
    assert check_plan(UNIT, OTHER, "food", AT, [plan()]) is None  # by sector
    assert check_plan(UNIT, FIRM, None, AT, [plan()], plan_id="P-1") is None


def test_no_plan_of_the_unit_for_the_day_is_unplanned() -> None:
    finding = check_plan(UNIT, FIRM, None, AT, [plan(unit="310101-cgzf")])
    assert finding is not None and finding.kind == "no_plan"
    out_of_period = check_plan(UNIT, FIRM, None, AT + dt.timedelta(days=90), [plan()])
    assert out_of_period is not None and out_of_period.kind == "no_plan"
    assert out_of_period.plans_considered == ["P-1"]


def test_a_plan_filed_after_the_inspection_does_not_cover_it() -> None:
    late = plan(filed_at=AT + dt.timedelta(hours=1))
    finding = check_plan(UNIT, FIRM, None, AT, [late])
    assert finding is not None and finding.kind == "no_plan"


def test_an_enterprise_outside_every_current_plan_is_flagged() -> None:
    finding = check_plan(UNIT, OTHER, "construction", AT, [plan()])
    assert finding is not None and finding.kind == "outside_plan"
    assert OTHER in finding.reason


def test_an_inspection_citing_an_unfiled_plan_is_unplanned() -> None:
    finding = check_plan(UNIT, FIRM, None, AT, [plan()], plan_id="P-404")
    assert finding is not None and finding.kind == "no_plan" and "P-404" in finding.reason


# ------------------------------------------------------------------ 多头检查、重复检查


def visit(i: int, unit: str, days_before: float, joint: str | None = None) -> Visit:
    return Visit(
        inspection_id=f"I-{i}", unit=unit, at=AT - dt.timedelta(days=days_before), joint_id=joint
    )


T = RepeatThresholds(window_days=90, max_units=3, max_visits=3)


def test_three_units_in_the_window_are_multi_headed() -> None:
    visits = [visit(1, "a", 10, "J"), visit(2, "b", 10, "J"), visit(3, "c", 0)]
    finding = check_repeats(FIRM, AT, visits, T)
    assert finding is not None and finding.too_many_units and not finding.too_many_visits
    assert finding.units == ["a", "b", "c"] and finding.visits == 2


def test_a_joint_inspection_counts_once() -> None:
    joint = [visit(1, UNIT, 5, "J-1"), visit(2, UNIT, 5, "J-1"), visit(3, UNIT, 0)]
    assert distinct_visits(joint) == 2
    assert check_repeats(FIRM, AT, joint, T) is None


def test_three_visits_in_the_window_are_repeated_and_older_ones_do_not_count() -> None:
    visits = [visit(1, UNIT, 60), visit(2, UNIT, 30), visit(3, UNIT, 0)]
    finding = check_repeats(FIRM, AT, visits, T)
    assert finding is not None and finding.too_many_visits and finding.visits == 3
    spread = [visit(1, UNIT, 200), visit(2, UNIT, 100), visit(3, UNIT, 0)]
    assert check_repeats(FIRM, AT, spread, T) is None


def test_window_bucket_is_stable_within_a_window() -> None:
    assert window_bucket(AT, 90) == window_bucket(AT.replace(hour=11), 90)
    assert window_bucket(AT, 90) != window_bucket(AT + dt.timedelta(days=90), 90)


# ------------------------------------------------------------------ 未亮码


def test_code_not_scanned_is_flagged_and_scanned_is_not() -> None:
    assert check_code(True) is None
    assert check_code(False) is not None


# ------------------------------------------------------------------ 无证执法

CERT = Certificate(
    officer_id="O-1",
    unit=UNIT,
    cert_no="沪执 0001",
    valid_from=dt.date(2025, 1, 1),
    valid_until=dt.date(2027, 12, 31),
)
DAY = dt.date(2026, 4, 10)


def test_a_valid_certificate_passes() -> None:
    assert check_officer("O-1", "沪执 0001", DAY, CERT) is None
    assert check_officer("O-1", None, DAY, CERT) is None


def test_unregistered_expired_and_mismatched_officers_are_flagged() -> None:
    unregistered = check_officer("O-9", "沪执 9999", DAY, None)
    assert unregistered is not None and unregistered.status == "unregistered"
    expired = check_officer("O-1", None, dt.date(2028, 1, 1), CERT)
    assert expired is not None and expired.status == "expired"
    mismatch = check_officer("O-1", "沪执 0002", DAY, CERT)
    assert mismatch is not None and mismatch.status == "mismatch"


def test_suspension_and_revocation_take_effect_from_their_day() -> None:
    suspended = CERT.model_copy(
        update={
            "suspended_since": dt.date(2026, 4, 1),
            "suspended_until": dt.date(2026, 4, 30),
        }
    )
    finding = check_officer("O-1", None, DAY, suspended)
    assert finding is not None and finding.status == "suspended"
    assert check_officer("O-1", None, dt.date(2026, 3, 31), suspended) is None
    assert check_officer("O-1", None, dt.date(2026, 5, 1), suspended) is None
    revoked = CERT.model_copy(update={"revoked_since": dt.date(2026, 4, 10)})
    gone = check_officer("O-1", None, DAY, revoked)
    assert gone is not None and gone.status == "revoked"
    assert check_officer("O-1", None, dt.date(2026, 4, 9), revoked) is None


# ------------------------------------------------------------------ rates


def test_certification_rate_below_the_line_is_breached_once_the_base_is_large_enough() -> None:
    assert certification_rate(8, 10, 0.9, 5).breached
    assert not certification_rate(9, 10, 0.9, 5).breached
    assert not certification_rate(2, 4, 0.9, 5).breached  # too few officers to judge
    assert certification_rate(0, 0, 0.9, 5).rate is None


def test_correction_rate_counts_every_outcome_but_upheld() -> None:
    outcomes = ["upheld", "upheld", "revised", "confirmed_illegal", "upheld"]
    high = correction_rate(outcomes, 0.2, 5)
    assert high.breached and high.numerator == 2 and high.rate == 0.4
    assert not correction_rate(["upheld"] * 4 + ["revoked"], 0.3, 5).breached
    assert not correction_rate(["revoked"] * 4, 0.2, 5).breached  # too few reviews


def test_a_lead_is_raised_when_the_line_is_crossed_not_while_it_stays_crossed() -> None:
    breached = certification_rate(1, 10, 0.9, 5)
    assert crossed(False, breached)
    assert not crossed(True, breached)
    assert not crossed(False, certification_rate(10, 10, 0.9, 5))
