"""Fine anomalies (罚没款异常增长, a sign of 趋利性执法) per unit and month.

Two comparisons, each explained with the numbers behind it:

- **own history**: the month's total against the unit's mean over the trailing months
  (months without fines count as 0); growth = (month − baseline) / baseline;
- **peers**: the month's total against the mean total of the other units of the same kind
  (e.g. all 城管执法局) that fined anybody in the same month; ratio = month / peer mean.

A comparison is *applicable* only with enough data (history months with fines, peer count),
and no month below ``min_amount`` is ever anomalous (doubling 200 元 is not 趋利).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel

from shared.city import load_city
from shared.workcalendar import CST

EPSILON = 1e-9
"""Thresholds are inclusive: a value equal to its threshold (up to float noise) triggers."""


def month_of(when: dt.datetime) -> str:
    """The CST calendar month ``YYYY-MM`` a decision counts towards."""
    return when.astimezone(CST).strftime("%Y-%m")


def trailing_months(month: str, count: int) -> list[str]:
    """The ``count`` months before ``month``, oldest first."""
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + (mon - 1)
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count, index)]


def unit_kind(unit_id: str) -> str:
    """Peers are units of the same kind (城管, 市场监管, 生态环境, 住建, 街镇综合执法)."""
    unit = load_city().unit(unit_id)
    if unit is not None:
        return unit.kind
    return unit_id.rsplit("-", 1)[-1] if "-" in unit_id else unit_id


class Thresholds(BaseModel):
    history_months: int
    min_history_months: int
    own_growth: float
    peer_ratio: float
    min_peers: int
    min_amount: float


class MonthTotal(BaseModel):
    total: float
    count: int


RuleName = Literal["own_history", "peers"]


class RuleResult(BaseModel):
    """One comparison: its inputs, its outcome and a sentence a supervisor can read."""

    rule: RuleName
    applicable: bool
    triggered: bool
    baseline: float | None
    value: float | None
    threshold: float
    explanation: str


class AnomalyAssessment(BaseModel):
    unit: str
    month: str
    total: float
    count: int
    anomalous: bool
    rules: list[RuleResult]
    explanation: str


def _yuan(amount: float) -> str:
    return f"{amount:,.0f} 元"


def _compared(
    rule: RuleName,
    baseline: float,
    value: float,
    threshold: float,
    big_enough: bool,
    described: str,
) -> RuleResult:
    """A comparison that applies: triggered when the month's total reaches the amount worth
    a look (``big_enough``) and ``value`` reaches ``threshold``; the verdict ends the sentence."""
    hit = big_enough and value + EPSILON >= threshold
    return RuleResult(
        rule=rule,
        applicable=True,
        triggered=hit,
        baseline=baseline,
        value=value,
        threshold=threshold,
        explanation=f"{described}：{'超过' if hit else '未超过'}",
    )


def _not_compared(
    rule: RuleName, threshold: float, why: str, baseline: float | None = None
) -> RuleResult:
    """A comparison without enough data to apply (never triggered); ``why`` says so."""
    return RuleResult(
        rule=rule,
        applicable=False,
        triggered=False,
        baseline=baseline,
        value=None,
        threshold=threshold,
        explanation=why,
    )


def assess_unit_month(
    unit: str,
    month: str,
    current: MonthTotal,
    history: Mapping[str, MonthTotal],
    peers: Sequence[MonthTotal],
    thresholds: Thresholds,
) -> AnomalyAssessment:
    """Judge one unit-month from its totals, its trailing history and its peers' totals."""
    big_enough = current.total + EPSILON >= thresholds.min_amount
    months = trailing_months(month, thresholds.history_months)
    past = [history[past_month].total if past_month in history else 0.0 for past_month in months]
    with_data = sum(1 for total in past if total > 0)
    baseline = sum(past) / len(past)
    head = f"{unit} {month} 罚没款 {_yuan(current.total)}（{current.count} 件）"

    if with_data >= thresholds.min_history_months and baseline > 0:
        growth = (current.total - baseline) / baseline
        own = _compared(
            "own_history",
            baseline,
            growth,
            thresholds.own_growth,
            big_enough,
            f"较前 {thresholds.history_months} 个月月均 {_yuan(baseline)}"
            f"（{months[0]}–{months[-1]}，合计 {_yuan(sum(past))}）增长 {growth:.1%}，"
            f"阈值 {thresholds.own_growth:.0%}",
        )
    else:
        own = _not_compared(
            "own_history",
            thresholds.own_growth,
            f"前 {thresholds.history_months} 个月仅 {with_data} 个月有罚没款，"
            f"少于 {thresholds.min_history_months} 个月，不作自身比较",
            baseline=baseline if with_data else None,
        )

    active = [other for other in peers if other.total > 0]
    if len(active) >= thresholds.min_peers:
        peer_mean = sum(other.total for other in active) / len(active)
        ratio = current.total / peer_mean
        peer = _compared(
            "peers",
            peer_mean,
            ratio,
            thresholds.peer_ratio,
            big_enough,
            f"为同类 {len(active)} 个单位同月平均 {_yuan(peer_mean)} 的 {ratio:.2f} 倍，"
            f"阈值 {thresholds.peer_ratio:g} 倍",
        )
    else:
        peer = _not_compared(
            "peers",
            thresholds.peer_ratio,
            f"同类单位同月仅 {len(active)} 个有罚没款，"
            f"少于 {thresholds.min_peers} 个，不作横向比较",
        )

    rules = [own, peer]
    anomalous = any(rule.triggered for rule in rules)
    tail = "" if big_enough else f"；低于关注金额 {_yuan(thresholds.min_amount)}，不作异常认定"
    return AnomalyAssessment(
        unit=unit,
        month=month,
        total=current.total,
        count=current.count,
        anomalous=anomalous,
        rules=rules,
        explanation=f"{head}：" + "；".join(rule.explanation for rule in rules) + tail,
    )
