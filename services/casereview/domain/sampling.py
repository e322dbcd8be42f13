"""双随机 sampling: which case files are reviewed, and by whom: reproducible from a seed.

Anyone holding the published seed, the population (case id + unit of every eligible case)
and the reviewer list can re-draw and get the same result. The algorithm (version
``sha256-v1``; also in ``services/casereview/SAMPLING.md``):

Key: ``h(x) = sha256(x.encode("utf-8")).hexdigest()`` (lower-case hex, compared as text).

Draw (抽取案卷):

1. Group the population by unit; take the units in ascending order of unit id.
2. Within a unit, order its cases by ``(h(f"{seed}|{case_id}"), case_id)`` ascending.
3. Take the first ``n`` of them: ``n = min(k, size)`` with k-per-unit, or
   ``n = ceil(size × percent / 100)`` (exact decimal arithmetic) with a percentage.
4. The sample is those cases, unit by unit, in that order.

Assignment (抽取评查人员):

1. Eligible reviewers of a case: every reviewer whose unit is not the case's unit.
2. Take the sampled cases in ascending order of ``(h(f"{seed}|assign|{case_id}"), case_id)``;
   give each to the eligible reviewer with the fewest cases so far, ties broken by the
   smallest ``(h(f"{seed}|{case_id}|{reviewer_id}"), reviewer_id)``.
3. Balance: while some reviewer ``s`` (taken by most cases first, ties by reviewer id) has a
   *cost-reducing path*, i.e. a chain ``s →c1→ r1 →c2→ r2 … → t`` where each ``ci`` is
   currently assigned to the previous reviewer and the next reviewer is eligible for it,
   ending at ``t`` with ``load(t) ≤ load(s) − 2``: move every ``ci`` one step along the
   chain (``s`` loses one case, ``t`` gains one). The chain is the first found by a
   breadth-first search from ``s`` that visits a reviewer's cases in the order of step 2
   and, for each case, the eligible reviewers in the tie-break order of step 2.
   This ends with loads within 1 of each other whenever the exclusions allow it.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterable, Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

ALGORITHM = "sha256-v1"


class Candidate(BaseModel):
    """One case file of the population: only what the draw needs."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    unit: str


class Reviewer(BaseModel):
    """A reviewer (评查人员) from the directory."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    unit: str
    district: str
    active: bool = True


class Quota(BaseModel):
    """How many per unit: ``k_per_unit`` or ``percent`` (exactly one)."""

    k_per_unit: int | None = Field(default=None, ge=1)
    percent: Decimal | None = Field(default=None, gt=0, le=100)

    def size(self, population: int) -> int:
        if self.k_per_unit is not None:
            return min(self.k_per_unit, population)
        if self.percent is None:
            raise ValueError("a quota needs k_per_unit or percent")
        return min(population, math.ceil(Decimal(population) * self.percent / 100))


class NoEligibleReviewer(ValueError):
    """A sampled case has no reviewer outside its own unit."""


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def population_hash(population: Iterable[Candidate]) -> str:
    """A fingerprint of the population to publish with the seed: sha256 of sorted lines."""
    lines = sorted(f"{c.case_id}|{c.unit}" for c in population)
    return h("\n".join(lines))


def draw_sample(population: Sequence[Candidate], seed: str, quota: Quota) -> list[Candidate]:
    """Draw step 1-4 (see the module docstring)."""
    by_unit: dict[str, list[Candidate]] = {}
    for c in population:
        by_unit.setdefault(c.unit, []).append(c)
    sample: list[Candidate] = []
    for unit in sorted(by_unit):
        ordered = sorted(by_unit[unit], key=lambda c: (h(f"{seed}|{c.case_id}"), c.case_id))
        sample.extend(ordered[: quota.size(len(ordered))])
    return sample


def assign_reviewers(
    sample: Sequence[Candidate], reviewers: Sequence[Reviewer], seed: str
) -> dict[str, str]:
    """Assignment step 1-3: case id → reviewer id; raises NoEligibleReviewer."""
    units = {c.case_id: c.unit for c in sample}
    pool = sorted(reviewers, key=lambda r: r.id)

    def tie(case_id: str, reviewer: Reviewer) -> tuple[str, str]:
        return (h(f"{seed}|{case_id}|{reviewer.id}"), reviewer.id)

    eligible: dict[str, list[Reviewer]] = {}
    for c in sample:
        ok = sorted((r for r in pool if r.unit != c.unit), key=lambda r: tie(c.case_id, r))
        if not ok:
            raise NoEligibleReviewer(f"no reviewer outside unit {c.unit} for case {c.case_id}")
        eligible[c.case_id] = ok
    order = sorted(units, key=lambda cid: (h(f"{seed}|assign|{cid}"), cid))
    rank = {cid: i for i, cid in enumerate(order)}
    load = {r.id: 0 for r in pool}
    owner: dict[str, str] = {}
    for cid in order:
        chosen = min(eligible[cid], key=lambda r: (load[r.id], tie(cid, r)))
        owner[cid] = chosen.id
        load[chosen.id] += 1

    def cases_of(reviewer_id: str) -> list[str]:
        return sorted((c for c, r in owner.items() if r == reviewer_id), key=rank.__getitem__)

    def improve() -> bool:
        for source in sorted(load, key=lambda rid: (-load[rid], rid)):
            parent: dict[str, tuple[str, str]] = {}
            queue = deque([source])
            seen = {source}
            while queue:
                here = queue.popleft()
                for cid in cases_of(here):
                    for r in eligible[cid]:
                        if r.id in seen:
                            continue
                        seen.add(r.id)
                        parent[r.id] = (here, cid)
                        if load[r.id] <= load[source] - 2:
                            target = r.id
                            while target != source:
                                previous, moved = parent[target]
                                owner[moved] = target
                                target = previous
                            load[source] -= 1
                            load[r.id] += 1
                            return True
                        queue.append(r.id)
        return False

    while improve():
        pass
    return dict(sorted(owner.items()))
