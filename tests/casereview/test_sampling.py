"""双随机 draw: reproducible, re-drawable by a third party, fair to reviewers."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.casereview.domain.directory import load_directory
from services.casereview.domain.sampling import (
    Candidate,
    Quota,
    Reviewer,
    assign_reviewers,
    draw_sample,
    population_hash,
)
from shared.city import load_city

DIRECTORY = load_directory()


def city_population(n: int, seed: int = 1) -> list[Candidate]:
    rng = random.Random(seed)
    units = [u.id for u in load_city().all_units() if not u.id.endswith("-sfj")]
    return [Candidate(case_id=f"C{i:05d}", unit=rng.choice(units)) for i in range(n)]


def spread(loads: dict[str, int]) -> int:
    return max(loads.values()) - min(loads.values())


def loads_of(assignments: dict[str, str], reviewers: list[Reviewer]) -> dict[str, int]:
    counts = Counter(assignments.values())
    return {r.id: counts.get(r.id, 0) for r in reviewers}


def test_same_seed_same_sample_and_assignment_whatever_the_input_order() -> None:
    population = city_population(600)
    shuffled = population[:]
    random.Random(9).shuffle(shuffled)
    quota = Quota(k_per_unit=2)
    first = draw_sample(population, "2025-Q2-静安", quota)
    again = draw_sample(shuffled, "2025-Q2-静安", quota)
    assert first == again
    reviewers = DIRECTORY.active()
    assert assign_reviewers(first, reviewers, "2025-Q2-静安") == assign_reviewers(
        again, list(reversed(reviewers)), "2025-Q2-静安"
    )
    assert draw_sample(population, "another seed", quota) != first


def test_quota_per_unit_k_and_percent() -> None:
    population = city_population(600)
    sizes = Counter(c.unit for c in population)
    by_k = Counter(c.unit for c in draw_sample(population, "s", Quota(k_per_unit=3)))
    assert by_k == {u: min(3, n) for u, n in sizes.items()}
    by_pct = Counter(c.unit for c in draw_sample(population, "s", Quota(percent=Decimal("15"))))
    assert by_pct == {u: math.ceil(n * 15 / 100) for u, n in sizes.items()}
    assert Quota(percent=Decimal("15")).size(10) == 2  # 1.5 → 2, no float surprises
    assert Quota(percent=Decimal("10")).size(10) == 1


def test_third_party_redraw_from_the_published_algorithm() -> None:
    """Re-implements SAMPLING.md with hashlib only and must agree with the service."""
    population = city_population(300, seed=4)
    seed = "published-seed-42"

    def key(case_id: str) -> str:
        return hashlib.sha256(f"{seed}|{case_id}".encode()).hexdigest()

    expected: list[str] = []
    for unit in sorted({c.unit for c in population}):
        ids = sorted((c.case_id for c in population if c.unit == unit), key=lambda i: (key(i), i))
        expected += ids[: math.ceil(len(ids) * 20 / 100)]
    drawn = draw_sample(population, seed, Quota(percent=Decimal(20)))
    assert [c.case_id for c in drawn] == expected
    lines = "\n".join(sorted(f"{c.case_id}|{c.unit}" for c in population))
    assert population_hash(population) == hashlib.sha256(lines.encode()).hexdigest()


def test_the_snippet_in_sampling_md_redraws_the_same_sample() -> None:
    """The published re-draw code (SAMPLING.md) run as is, against the service's draw."""
    doc = Path(__file__).parents[2] / "services/casereview/SAMPLING.md"
    text = doc.read_text("utf-8")
    code = text.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(doc), "exec"), namespace)
    population = city_population(400, seed=7)
    pairs = [(c.case_id, c.unit) for c in population]
    for quota, kwargs in (
        (Quota(k_per_unit=2), {"k": 2}),
        (Quota(percent=Decimal("12.5")), {"percent": "12.5"}),
    ):
        service = [c.case_id for c in draw_sample(population, "公开种子", quota)]
        assert namespace["redraw"](pairs, "公开种子", **kwargs) == service


def test_no_reviewer_reviews_own_unit_and_load_is_balanced() -> None:
    reviewers = DIRECTORY.active()
    sample = draw_sample(city_population(2000), "s", Quota(k_per_unit=3))
    assignments = assign_reviewers(sample, reviewers, "s")
    units = {c.case_id: c.unit for c in sample}
    by_id = {r.id: r for r in reviewers}
    assert set(assignments) == set(units)
    assert all(by_id[r].unit != units[c] for c, r in assignments.items())
    assert spread(loads_of(assignments, reviewers)) <= 1


def test_balancing_repairs_what_greedy_order_would_break() -> None:
    """Only C may take U's cases: whatever the order, everyone ends with 2."""
    reviewers = [
        Reviewer(id="A", name="甲", unit="U", district="310101"),
        Reviewer(id="B", name="乙", unit="U", district="310101"),
        Reviewer(id="C", name="丙", unit="V", district="310104"),
    ]
    sample = [Candidate(case_id=f"u{i}", unit="U") for i in range(2)] + [
        Candidate(case_id=f"w{i}", unit="W") for i in range(4)
    ]
    for seed in map(str, range(30)):
        assignments = assign_reviewers(sample, reviewers, seed)
        assert assignments["u0"] == assignments["u1"] == "C"
        assert loads_of(assignments, reviewers) == {"A": 2, "B": 2, "C": 2}


@settings(max_examples=60, deadline=None)
@given(
    n_units=st.integers(min_value=3, max_value=8),
    n_reviewers=st.integers(min_value=2, max_value=7),
    n_cases=st.integers(min_value=1, max_value=60),
    seed=st.text(min_size=1, max_size=8),
    shape=st.randoms(use_true_random=False),
)
def test_exclusion_and_balance_hold_for_any_draw(
    n_units: int, n_reviewers: int, n_cases: int, seed: str, shape: random.Random
) -> None:
    units = [f"U{i}" for i in range(n_units)]
    reviewers = [
        Reviewer(id=f"R{i}", name=f"R{i}", unit=units[i % n_units], district="310101")
        for i in range(n_reviewers)
    ]
    sample = [Candidate(case_id=f"c{i}", unit=shape.choice(units)) for i in range(n_cases)]
    assignments = assign_reviewers(sample, reviewers, seed)
    unit_of = {c.case_id: c.unit for c in sample}
    by_id = {r.id: r for r in reviewers}
    assert all(by_id[r].unit != unit_of[c] for c, r in assignments.items())
    assert assignments == assign_reviewers(list(reversed(sample)), reviewers, seed)
    if len({r.unit for r in reviewers}) == len(reviewers) and all(
        n * 2 <= n_cases for n in Counter(unit_of.values()).values()
    ):
        # distinct reviewer units and no unit with more than half the cases: balance exists
        assert spread(loads_of(assignments, reviewers)) <= 1
