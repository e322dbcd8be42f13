"""The demo generator: deterministic, contract-valid, mixes honoured, stories in order."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from functools import lru_cache

import pytest
from pydantic import ValidationError

from devtools.demo import DemoGenerator, DemoMix
from devtools.demo.catalogue import LARGE_FINE, PROVISION_BY_TEXT
from devtools.demo.fakes import is_valid_uscc
from shared.city import load_city
from shared.contracts import validate_external
from shared.envelope import Envelope
from shared.topics import EXTERNAL_TYPE_TOPICS
from shared.workcalendar import working_days_between

START = dt.datetime(2025, 9, 15, tzinfo=dt.UTC)  # spans the National Day holiday

MIX = DemoMix(
    duplicate_rate=0.1,
    bounce_rate=0.12,
    overdue_rate=0.09,
    hotspot_rate=0.15,
    top_tier_rate=0.3,
    late_filing_rate=0.25,
    missing_filing_rate=0.2,
    single_officer_rate=0.06,
    expired_cert_rate=0.05,
    late_service_rate=0.07,
    decided_before_notice_rate=0.05,
    no_legal_review_rate=0.4,
)


@lru_cache(maxsize=4)
def generate(seed: int, n_orders: int, n_cases: int) -> list[tuple[dt.datetime, Envelope]]:
    return DemoGenerator(seed, START, MIX).events(n_orders, n_cases)


def big() -> list[Envelope]:
    return [e for _, e in generate(11, 2000, 600)]


def of_type(events: list[Envelope], suffix: str) -> list[Envelope]:
    return [e for e in events if e.type.endswith(suffix)]


def stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def close_to(share: float, rate: float, tolerance: float = 0.02) -> bool:
    return abs(share - rate) <= tolerance


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_events_and_ids() -> None:
    first = DemoGenerator(3, START, MIX).events(150, 40)
    generator = DemoGenerator(3, START, MIX)
    second = generator.events(150, 40)
    again = generator.events(150, 40)  # calling twice does not advance any state
    dump = [(t, e.model_dump(mode="json")) for t, e in first]
    assert dump == [(t, e.model_dump(mode="json")) for t, e in second]
    assert dump == [(t, e.model_dump(mode="json")) for t, e in again]


def test_different_seeds_give_different_events() -> None:
    a = [e for _, e in DemoGenerator(3, START, MIX).events(150, 40)]
    b = [e for _, e in DemoGenerator(4, START, MIX).events(150, 40)]
    assert {e.id for e in a}.isdisjoint({e.id for e in b})
    assert {e.partitionkey for e in a}.isdisjoint({e.partitionkey for e in b})
    assert [e.data.get("description") for e in a[:20]] != [
        e.data.get("description") for e in b[:20]
    ]


def test_event_ids_are_unique() -> None:
    events = big()
    assert len({e.id for e in events}) == len(events)


# ---------------------------------------------------------------- contract


def test_every_event_validates_against_its_contract_and_fits_kafka() -> None:
    city = load_city()
    events = big()
    assert set(Counter(e.type for e in events)) == set(EXTERNAL_TYPE_TOPICS)
    district_of: dict[str, str] = {}
    for event in events:
        data = validate_external(event)  # raises EventRejected on any contract breach
        assert city.district(event.district) is not None
        key = next(
            getattr(data, name)
            for name in ("order_id", "enterprise", "plan_id", "officer_id", "review_id", "case_id")
            if getattr(data, name, None)
        )
        assert event.partitionkey == key
        district_of.setdefault(key, event.district)
        assert district_of[key] == event.district, "one entity, one district"
        if event.type.startswith("gov.12345."):
            assert event.source == "/12345/platform"
        else:
            assert event.source == f"/case-system/{event.district}"
        if hasattr(data, "district"):
            assert data.district == event.district
        unit = getattr(data, "by_unit", None) or getattr(data, "unit", None)
        if unit is not None:
            assert city.unit(unit) is not None, unit
        event.to_kafka()  # under 64 KiB, encodable in binary mode


def test_business_targets_carry_well_formed_credit_codes() -> None:
    events = big()
    codes = [
        c.data["party"]["id"]
        for c in of_type(events, "case.closed")
        if c.data["party"]["type"] == "business"
    ]
    codes += [
        e.data["target"].rsplit("（", 1)[1].rstrip("）")
        for e in of_type(events, "created")
        if e.data.get("target")
    ]
    assert len(codes) > 500
    assert all(len(code) == 18 and is_valid_uscc(code) for code in codes)
    # the checker itself accepts real published codes and refuses a mistyped one
    assert is_valid_uscc("91350100M000100Y43")  # GB 32100-2015 example
    assert not is_valid_uscc("91350100M000100Y44")


# ---------------------------------------------------------------- mixes


def test_work_order_mix_rates_are_honoured() -> None:
    events = big()
    created = Counter(e.partitionkey for e in of_type(events, "created"))
    n = len(created)
    assert n == 2000
    assert close_to(sum(c > 1 for c in created.values()) / n, MIX.duplicate_rate)

    updates = of_type(events, "updated")
    returns = Counter(e.partitionkey for e in updates if e.data["action"] == "returned")
    assert close_to(sum(c >= 2 for c in returns.values()) / n, MIX.bounce_rate)
    assert max(returns.values()) <= 3
    territorial = {
        e.partitionkey
        for e in updates
        if e.data["action"] == "returned" and "属地" in e.data["reason"]
    }
    assert territorial, "some bounces cite territorial management"

    resolved = {e.partitionkey for e in updates if e.data["action"] == "resolved"}
    assert close_to(1 - len(resolved) / n, MIX.overdue_rate)
    acknowledged = {e.partitionkey for e in updates if e.data["action"] == "acknowledged"}
    assert set(created) - acknowledged, "some orders are never even acknowledged"

    first_created: dict[str, Envelope] = {}
    for e in of_type(events, "created"):
        first_created.setdefault(e.partitionkey, e)
    by_address: dict[str, list[dt.datetime]] = defaultdict(list)
    for e in first_created.values():
        by_address[e.data["address"]].append(e.time)
    hot = [
        len(times)
        for times in by_address.values()
        if len(times) >= 3 and max(times) - min(times) <= dt.timedelta(days=MIX.hotspot_window_days)
    ]
    assert close_to(sum(hot) / n, MIX.hotspot_rate, 0.03)

    resolutions = [e for e in updates if e.data["action"] == "resolved"]
    confirmed = [e for e in resolutions if e.data.get("verdict") == "violation_confirmed"]
    assert close_to(len(confirmed) / len(resolutions), MIX.violation_confirmed_rate, 0.05)
    confirmed_ids = {e.id for e in confirmed}
    assert all(("属实" in e.data["outcome"]) == (e.id in confirmed_ids) for e in resolutions)


def test_case_and_penalty_mix_rates_are_honoured() -> None:
    events = big()
    cases = [e.data for e in of_type(events, "case.closed")]
    assert len(cases) == 600
    general = [c for c in cases if c["procedure"] == "general"]

    single = sum(len(c["officers"]) == 1 for c in cases)
    assert close_to(single / len(cases), MIX.single_officer_rate)
    expired = sum(
        any(o["cert_valid_until"] < c["dates"]["decided"] for o in c["officers"]) for c in cases
    )
    assert close_to(expired / len(cases), MIX.expired_cert_rate)

    def days(c: dict[str, dict[str, str]], a: str, b: str) -> int:
        return (dt.date.fromisoformat(c["dates"][b]) - dt.date.fromisoformat(c["dates"][a])).days

    def working_days(c: dict[str, dict[str, str]], a: str, b: str) -> int:
        start, end = (dt.date.fromisoformat(c["dates"][k]) for k in (a, b))
        return working_days_between(start, end)

    late_service = sum(working_days(c, "decided", "served") > 7 for c in general)
    assert close_to(late_service / len(general), MIX.late_service_rate)
    before_notice = sum(days(c, "notified", "decided") < 0 for c in general)
    assert close_to(before_notice / len(general), MIX.decided_before_notice_rate)

    large = [c for c in cases if c["decision"]["fine"] >= LARGE_FINE[c["party"]["type"]]]
    unreviewed = [c for c in large if not c["legal_review"]]
    assert close_to(len(unreviewed) / len(large), MIX.no_legal_review_rate, 0.05)
    assert all("法制审核意见书" not in {d["kind"] for d in c["documents"]} for c in unreviewed)

    decided = of_type(events, "penalty.decided")
    top = []
    for e in decided:
        low, high = PROVISION_BY_TEXT[e.data["provision"]].range_for(e.data["party_type"])
        assert low <= e.data["fine"] <= high
        if e.data["fine"] == high:
            top.append(e.partitionkey)
    fined_general = {c["case_id"] for c in general if c["decision"]["kind"] == "fine"}
    assert close_to(len(top) / len(fined_general), MIX.top_tier_rate, 0.03)

    decided_at = {e.partitionkey: stamp(e.data["decided_at"]) for e in decided}
    filed_at = {e.partitionkey: stamp(e.data["filed_at"]) for e in of_type(events, "penalty.filed")}
    assert set(filed_at) <= set(top), "only top-tier penalties are filed"
    missing = [k for k in top if k not in filed_at]
    late = [k for k in top if k in filed_at and filed_at[k] - decided_at[k] > dt.timedelta(days=10)]
    assert close_to(len(missing) / len(top), MIX.missing_filing_rate, 0.03)
    assert close_to(len(late) / len(top), MIX.late_filing_rate, 0.03)


def test_rates_of_zero_switch_a_situation_off() -> None:
    calm = DemoMix(duplicate_rate=0, bounce_rate=0, missing_filing_rate=0, single_officer_rate=0)
    events = [e for _, e in DemoGenerator(5, START, calm).events(300, 120)]
    created = Counter(e.partitionkey for e in of_type(events, "created"))
    assert max(created.values()) == 1
    returns = Counter(
        e.partitionkey for e in of_type(events, "updated") if e.data["action"] == "returned"
    )
    assert not returns or max(returns.values()) == 1
    assert all(len(e.data["officers"]) >= 2 for e in of_type(events, "case.closed"))


def test_exclusive_rates_cannot_exceed_one() -> None:
    with pytest.raises(ValidationError, match="exclusive"):
        DemoMix(bounce_rate=0.5, overdue_rate=0.4, extension_rate=0.2)
    with pytest.raises(
        ValidationError, match=r"duplicate_rate\s+Input should be less than or equal to 1"
    ):
        DemoMix(duplicate_rate=1.5)


# ---------------------------------------------------------------- ordering


def test_events_are_sorted_and_every_story_is_in_order() -> None:
    pairs = generate(11, 2000, 600)
    times = [t for t, _ in pairs]
    assert times == sorted(times)
    assert all(t == e.time for t, e in pairs)

    seen_created: dict[str, dt.datetime] = {}
    decided: dict[str, dt.datetime] = {}
    resolved: set[str] = set()
    for when, event in pairs:
        key = event.partitionkey
        if event.type.endswith("created"):
            seen_created.setdefault(key, when)
        elif event.type.endswith("updated"):
            assert key in seen_created, "update before its create"
            assert stamp(event.data["at"]) > seen_created[key]
            if event.data["action"] == "rated":
                assert key in resolved, "rated before resolved"
            if event.data["action"] == "resolved":
                resolved.add(key)
        elif event.type.endswith("penalty.decided"):
            decided[key] = when
        elif event.type.endswith("penalty.filed"):
            assert key in decided, "filing before its decision"
            assert when > decided[key]
        elif event.type.endswith("case.closed"):
            if event.data["decision"]["kind"] == "fine":
                assert key in decided, "case closed before its penalty decision"
            source = event.data.get("source_order_id")
            if source:
                assert source in resolved, "a case from a complaint follows its resolution"
