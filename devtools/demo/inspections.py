"""Synthetic enterprise inspections (涉企行政检查) for the demo generator.

Per call: a few inspecting units (two per chosen district, so joint inspections and
多头检查 can happen), each with a filed plan (双随机 or a named list), its officers'
certificates, and inspections over the span; plus 行政复议 / 行政诉讼 / 检察建议 outcomes on
their cases. Faults occur at the rates of :class:`InspectionMix` (rounded, then shuffled):
inspections outside any plan, 检查码 not scanned, an officer whose certificate lapsed or was
revoked, one enterprise visited again and again, corrected review outcomes.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from devtools.demo import catalogue as cat
from devtools.demo import fakes
from shared.city import City, District
from shared.contracts import (
    Contract,
    InspectingOfficer,
    InspectionConducted,
    InspectionPlanned,
    OfficerCertified,
    OfficerRevoked,
    OfficerSuspended,
    ReviewDecided,
)
from shared.workcalendar import CST

PLANNED = "gov.enforcement.inspection.planned"
CONDUCTED = "gov.enforcement.inspection.conducted"
CERTIFIED = "gov.enforcement.officer.certified"
REVOKED = "gov.enforcement.officer.revoked"
SUSPENDED = "gov.enforcement.officer.suspended"
REVIEW_DECIDED = "gov.enforcement.review.decided"

INSPECTING_KINDS = ("scjg", "cgzf", "sthj", "zjw")
SECTORS = tuple(cat.BUSINESS_SUFFIX)
OUTCOMES = (("upheld", 0.7), ("revised", 0.12), ("revoked", 0.1), ("confirmed_illegal", 0.08))
CHANNELS = (("reconsideration", 0.6), ("litigation", 0.3), ("procuratorate", 0.1))

Emit = Callable[[dt.datetime, str, str, str, Contract], None]
"""(time, type, district, partition key, data)."""


class InspectionMix(BaseModel):
    """How often each inspection fault occurs (shares of inspections, officers or units)."""

    model_config = ConfigDict(extra="forbid")

    unplanned_rate: float = Field(default=0.08, ge=0, le=1, description="outside every plan")
    no_code_rate: float = Field(default=0.1, ge=0, le=1, description="检查码 not scanned")
    lapsed_officer_rate: float = Field(
        default=0.05, ge=0, le=1, description="an officer whose certificate lapsed"
    )
    joint_rate: float = Field(default=0.2, ge=0, le=1, description="综合查一次 with a 2nd unit")
    repeat_rate: float = Field(
        default=0.08, ge=0, le=1, description="the enterprise is visited again, twice"
    )
    revoked_rate: float = Field(default=0.03, ge=0, le=1, description="officers revoked")
    suspended_rate: float = Field(
        default=0.05, ge=0, le=1, description="officers suspended (暂停) for 30-90 days"
    )
    reviews_per_unit: int = Field(default=3, ge=0, le=50)


@dataclass
class InspectingUnit:
    unit: str
    district: District
    officers: list[dict[str, Any]]
    plan_id: str
    sector: str
    firms: list[tuple[str, str, str]] = field(default_factory=list)  # (uscc, name, sector)


def cst_day(when: dt.datetime) -> dt.date:
    return when.astimezone(CST).date()


def generate(
    rng: random.Random,
    city: City,
    start: dt.datetime,
    span: dt.timedelta,
    n: int,
    mix: InspectionMix,
    roster: Callable[[str], list[dict[str, Any]]],
    unique: Callable[[Callable[[], object]], str],
    emit: Emit,
) -> None:
    """``n`` inspections with their plans, certificates and review outcomes."""
    if n <= 0:
        return

    def plan_id(unit: str) -> str:
        return unique(lambda: f"JH-{unit}-{rng.randrange(10**6):06d}")

    def inspection_id(unit: str) -> str:
        return unique(lambda: f"JC-{unit}-{rng.randrange(10**7):07d}")

    def serial(prefix: str) -> str:
        return unique(lambda: f"{prefix}-{rng.randrange(10**8):08d}")

    districts = rng.sample(city.districts, min(len(city.districts), max(1, n // 16)))
    units: list[InspectingUnit] = []
    firms: dict[str, list[tuple[str, str, str]]] = {}
    for district in districts:
        # the district's enterprises: every plan of the district names them
        firms[district.code] = []
        for _ in range(rng.randint(8, 14)):
            kind = rng.choice(SECTORS)
            name, code = fakes.business(rng, district.code, kind, district.name)
            firms[district.code].append((code, name, kind))
        for kind in rng.sample(INSPECTING_KINDS, 2):
            unit_id = f"{district.code}-{kind}"
            if city.unit(unit_id) is None:
                continue
            units.append(
                InspectingUnit(
                    unit=unit_id,
                    district=district,
                    officers=roster(unit_id),
                    plan_id=plan_id(unit_id),
                    sector=rng.choice(SECTORS),
                    firms=firms[district.code],
                )
            )
    if not units:
        return
    first_day = cst_day(start)
    for u in units:
        # certificates: every officer, issued long before (the roster's last one has lapsed)
        for o in u.officers:
            valid_until: dt.date = o["cert_valid_until"]
            emit(
                start - dt.timedelta(days=30, minutes=rng.randrange(600)),
                CERTIFIED,
                u.district.code,
                o["id"],
                OfficerCertified(
                    officer_id=o["id"],
                    name=o["name"],
                    unit=u.unit,
                    district=u.district.code,
                    cert_no=o["cert_no"],
                    valid_from=valid_until - dt.timedelta(days=5 * 365),
                    valid_until=valid_until,
                    at=start - dt.timedelta(days=30),
                ),
            )
        # the plan names the district's enterprises and covers one sector as a whole
        emit(
            start - dt.timedelta(days=20),
            PLANNED,
            u.district.code,
            u.plan_id,
            InspectionPlanned(
                plan_id=u.plan_id,
                unit=u.unit,
                district=u.district.code,
                period_start=first_day - dt.timedelta(days=first_day.day - 1),
                period_end=first_day + span + dt.timedelta(days=90),
                enterprises=[code for code, _, _ in u.firms],
                sectors=[u.sector],
                double_random=rng.random() < 0.6,
                filed_at=start - dt.timedelta(days=20),
            ),
        )

    labels = _assign(rng, n, {"unplanned": mix.unplanned_rate, "repeat": mix.repeat_rate})
    no_code = _chosen(rng, n, mix.no_code_rate)
    lapsed = _chosen(rng, n, mix.lapsed_officer_rate)
    joint = _chosen(rng, n, mix.joint_rate)
    for i in range(n):
        u = rng.choice(units)
        at = start + dt.timedelta(seconds=rng.uniform(0, span.total_seconds()))
        if labels[i] == "unplanned":
            outside = [k for k in SECTORS if all(k != p.sector for p in units)]
            kind = rng.choice(outside or SECTORS)
            name, code = fakes.business(rng, u.district.code, kind, u.district.name)
            firm = (code, name, kind)
        else:
            firm = rng.choice(u.firms)
        visits = [at]
        if labels[i] == "repeat":
            visits += [at + dt.timedelta(days=d) for d in sorted(rng.sample(range(3, 40), 2))]
        partners = [p for p in units if p.district is u.district and p is not u]
        joint_id = serial("LH") if i in joint else None
        for when in visits:
            inspectors = [u, *partners[:1]] if joint_id and partners else [u]
            for who in inspectors:
                valid, lapsed_one = who.officers[:-1], who.officers[-1]
                officers = rng.sample(valid, 2)
                if i in lapsed and who is u:
                    officers[-1] = lapsed_one
                emit(
                    when,
                    CONDUCTED,
                    u.district.code,
                    firm[0],
                    InspectionConducted(
                        inspection_id=inspection_id(who.unit),
                        unit=who.unit,
                        district=u.district.code,
                        officers=[
                            InspectingOfficer(id=o["id"], cert_no=o["cert_no"]) for o in officers
                        ],
                        enterprise=firm[0],
                        enterprise_name=firm[1],
                        sector=firm[2],
                        at=when,
                        code_scanned=i not in no_code,
                        joint_id=joint_id if len(inspectors) > 1 else None,
                        plan_id=who.plan_id if rng.random() < 0.5 else None,
                        result=rng.choice(("no_issue", "no_issue", "rectification", "case_opened")),
                    ),
                )

    for u in units:
        # a certificate suspended (暂停) or withdrawn (收回 / 注销) during the span
        for o in u.officers[:-1]:
            draw = rng.random()
            when = start + dt.timedelta(seconds=rng.uniform(0, span.total_seconds()))
            if draw < mix.suspended_rate:
                emit(
                    when,
                    SUSPENDED,
                    u.district.code,
                    o["id"],
                    OfficerSuspended(
                        officer_id=o["id"],
                        unit=u.unit,
                        district=u.district.code,
                        cert_no=o["cert_no"],
                        since=cst_day(when),
                        until=cst_day(when) + dt.timedelta(days=rng.randint(30, 90)),
                        reason="执法过错责任追究，暂停执法资格",
                        at=when,
                    ),
                )
            elif draw < mix.suspended_rate + mix.revoked_rate:
                emit(
                    when,
                    REVOKED,
                    u.district.code,
                    o["id"],
                    OfficerRevoked(
                        officer_id=o["id"],
                        unit=u.unit,
                        district=u.district.code,
                        cert_no=o["cert_no"],
                        since=cst_day(when),
                        reason="因违法执法被收回执法证件",
                        at=when,
                    ),
                )
        # review / litigation / procuratorate outcomes on the unit's earlier cases
        for _ in range(mix.reviews_per_unit):
            when = start + dt.timedelta(seconds=rng.uniform(0, span.total_seconds()))
            review_id = serial("FY")
            emit(
                when,
                REVIEW_DECIDED,
                u.district.code,
                review_id,
                ReviewDecided(
                    review_id=review_id,
                    case_id=f"{u.unit}-{when.year - 1}-{rng.randrange(10**4):04d}",
                    unit=u.unit,
                    district=u.district.code,
                    channel=_weighted(rng, CHANNELS),
                    outcome=_weighted(rng, OUTCOMES),
                    decided_at=when,
                    body=f"{u.district.name}人民政府",
                ),
            )


def _assign(rng: random.Random, n: int, rates: dict[str, float]) -> list[str]:
    labels: list[str] = []
    for label, rate in rates.items():
        labels += [label] * min(round(rate * n), n - len(labels))
    labels += ["normal"] * (n - len(labels))
    rng.shuffle(labels)
    return labels


def _chosen(rng: random.Random, n: int, rate: float) -> set[int]:
    return set(rng.sample(range(n), min(n, round(rate * n))))


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> Any:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]
