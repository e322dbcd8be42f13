"""Supervision rules over enterprise inspections, officers' certificates and corrections.

Pure functions over plain values: the handlers load what a rule needs from storage, call the
rule, and turn a finding into a lead. Thresholds come from the service's settings.

- 未备案检查: an inspection without a filed plan of its unit, or outside every such plan
  (seed 003 "涉企行政执法检查……备案审查制度");
- 多头检查、重复检查: one enterprise inspected by ≥ N units or ≥ M times in a trailing window,
  a joint inspection (综合查一次) counted once (seed 001 "避免多头执法、重复检查");
- 未亮码: an inspection without a scanned 检查码 (seed 000 "凡检查必亮码");
- 无证执法: an officer without a valid certificate on the day (seed 001 "持证上岗");
- 持证率 below the line (seed 002 "持证率达到90%以上") and 被纠错率 above a threshold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from shared.certificates import Certificate
from shared.workcalendar import CST

__all__ = ["Certificate"]

CORRECTED_OUTCOMES = frozenset({"revised", "revoked", "confirmed_illegal"})
"""Review outcomes that correct the unit (纠错): anything but 维持 (upheld)."""


# ------------------------------------------------------------------ plans (未备案检查)


class Plan(BaseModel):
    """A filed inspection plan, as the rule needs it."""

    plan_id: str
    unit: str
    period_start: dt.date
    period_end: dt.date
    enterprises: list[str] = Field(default_factory=list)
    sectors: list[str] = Field(default_factory=list)
    double_random: bool = False
    filed_at: dt.datetime | None = None

    def covers_day(self, day: dt.date) -> bool:
        return self.period_start <= day <= self.period_end

    def covers_target(self, enterprise: str, sector: str | None) -> bool:
        """A plan naming neither enterprises nor sectors covers nobody in particular."""
        return enterprise in self.enterprises or (sector is not None and sector in self.sectors)


class PlanFinding(BaseModel):
    kind: Literal["no_plan", "outside_plan"]
    reason: str
    plans_considered: list[str] = Field(default_factory=list)


def check_plan(
    unit: str,
    enterprise: str,
    sector: str | None,
    at: dt.datetime,
    plans: Iterable[Plan],
    plan_id: str | None = None,
) -> PlanFinding | None:
    """未备案检查: ``None`` when a plan of ``unit`` filed before ``at`` covers its day (CST)
    and the enterprise (by name or sector).

    ``no_plan``: the unit filed no plan covering the day (or the referenced plan was never
    filed); ``outside_plan``: plans cover the day but none names the enterprise or its sector.
    A plan filed after the inspection does not cover it (备案 comes first).
    """
    day = at.astimezone(CST).date()
    of_unit = [p for p in plans if p.unit == unit and (p.filed_at is None or p.filed_at <= at)]
    if plan_id is not None:
        named = [p for p in of_unit if p.plan_id == plan_id]
        if not named:
            return PlanFinding(
                kind="no_plan",
                reason=f"检查所依据的计划 {plan_id} 未向司法行政部门备案",
                plans_considered=[],
            )
        of_unit = named
    current = [p for p in of_unit if p.covers_day(day)]
    if not current:
        return PlanFinding(
            kind="no_plan",
            reason=f"{unit} 在 {day} 无已备案的涉企检查计划",
            plans_considered=sorted(p.plan_id for p in of_unit),
        )
    if any(p.covers_target(enterprise, sector) for p in current):
        return None
    return PlanFinding(
        kind="outside_plan",
        reason=f"被检查企业 {enterprise}{f'（{sector}）' if sector else ''} 不在已备案计划范围内",
        plans_considered=sorted(p.plan_id for p in current),
    )


# ------------------------------------------------------------------ 多头检查、重复检查


class Visit(BaseModel):
    """One inspection of the enterprise, as stored."""

    inspection_id: str
    unit: str
    at: dt.datetime
    joint_id: str | None = None


class RepeatThresholds(BaseModel):
    window_days: int = Field(default=90, ge=1)
    max_units: int = Field(default=3, ge=2, description="多头检查 at ≥ this many units")
    max_visits: int = Field(default=3, ge=2, description="重复检查 at ≥ this many visits")


class RepeatFinding(BaseModel):
    units: list[str]
    visits: int
    too_many_units: bool
    too_many_visits: bool
    window_start: dt.datetime
    window_end: dt.datetime
    reason: str


def distinct_visits(visits: Iterable[Visit]) -> int:
    """Inspections counted as the enterprise lives them: a joint one (综合查一次) once."""
    return len({f"joint:{v.joint_id}" if v.joint_id else f"one:{v.inspection_id}" for v in visits})


def check_repeats(
    enterprise: str, at: dt.datetime, visits: Sequence[Visit], t: RepeatThresholds
) -> RepeatFinding | None:
    """多头检查 / 重复检查 in the window ``(at − window_days, at]``; ``visits`` include this one."""
    start = at - dt.timedelta(days=t.window_days)
    inside = [v for v in visits if start < v.at <= at]
    units = sorted({v.unit for v in inside})
    count = distinct_visits(inside)
    many_units = len(units) >= t.max_units
    many_visits = count >= t.max_visits
    if not (many_units or many_visits):
        return None
    parts = []
    if many_units:
        parts.append(f"{len(units)} 个单位检查（多头检查，标准 <{t.max_units}）")
    if many_visits:
        parts.append(f"检查 {count} 次（重复检查，标准 <{t.max_visits}，联合检查计一次）")
    return RepeatFinding(
        units=units,
        visits=count,
        too_many_units=many_units,
        too_many_visits=many_visits,
        window_start=start,
        window_end=at,
        reason=f"企业 {enterprise} 在 {t.window_days} 日内被" + "，".join(parts),
    )


def window_bucket(at: dt.datetime, window_days: int) -> int:
    """The window a finding belongs to: one lead per enterprise per window, not per visit."""
    return (at.astimezone(dt.UTC).date() - dt.date(1970, 1, 1)).days // window_days


# ------------------------------------------------------------------ 未亮码


def check_code(code_scanned: bool) -> str | None:
    """凡检查必亮码: the reason when the 检查码 was not scanned."""
    return None if code_scanned else "检查未扫描（亮）检查码"


# ------------------------------------------------------------------ 持证上岗 (officer registry)


class CertificateFinding(BaseModel):
    officer_id: str
    cert_no: str | None
    status: Literal["unregistered", "revoked", "suspended", "expired", "not_yet_valid", "mismatch"]
    reason: str


def check_officer(
    officer_id: str, cert_no: str | None, day: dt.date, certificate: Certificate | None
) -> CertificateFinding | None:
    """无证执法: ``None`` when the registry holds a certificate of the officer valid on ``day``
    (and, when the file names a certificate number, it is that one)."""
    if certificate is None:
        return CertificateFinding(
            officer_id=officer_id,
            cert_no=cert_no,
            status="unregistered",
            reason=f"执法人员 {officer_id} 无登记的行政执法证件",
        )
    if cert_no is not None and cert_no != certificate.cert_no:
        return CertificateFinding(
            officer_id=officer_id,
            cert_no=cert_no,
            status="mismatch",
            reason=(
                f"执法人员 {officer_id} 出示的证号 {cert_no} 与登记证号 {certificate.cert_no} 不符"
            ),
        )
    status = certificate.status_on(day)
    if status == "valid":
        return None
    label = {
        "revoked": "已被收回或注销",
        "suspended": "处于暂停期间",
        "expired": f"已于 {certificate.valid_until} 到期",
        "not_yet_valid": f"自 {certificate.valid_from} 起才有效",
    }[status]
    return CertificateFinding(
        officer_id=officer_id,
        cert_no=certificate.cert_no,
        status=status,  # type: ignore[arg-type]
        reason=f"执法人员 {officer_id} 的执法证 {certificate.cert_no} 在 {day} {label}",
    )


# ------------------------------------------------------------------ rates


class RateAssessment(BaseModel):
    """A ratio against its line; ``breached`` only once the base is large enough."""

    numerator: int
    denominator: int
    rate: float | None
    line: float
    breached: bool


def certification_rate(
    certified: int, officers: int, line: float, min_officers: int
) -> RateAssessment:
    """持证率: officers holding a valid certificate over the unit's (district's) officers."""
    rate = certified / officers if officers else None
    breached = rate is not None and officers >= min_officers and rate < line
    return RateAssessment(
        numerator=certified, denominator=officers, rate=rate, line=line, breached=breached
    )


def correction_rate(outcomes: Iterable[str], line: float, min_reviews: int) -> RateAssessment:
    """被纠错率: reviews that revised, revoked or found the act illegal, over all reviews."""
    listed = list(outcomes)
    corrected = sum(1 for o in listed if o in CORRECTED_OUTCOMES)
    rate = corrected / len(listed) if listed else None
    breached = rate is not None and len(listed) >= min_reviews and rate >= line
    return RateAssessment(
        numerator=corrected, denominator=len(listed), rate=rate, line=line, breached=breached
    )


def crossed(previously_breached: bool, assessment: RateAssessment) -> bool:
    """A lead is raised when the line is crossed, not on every event while it stays crossed."""
    return assessment.breached and not previously_breached
