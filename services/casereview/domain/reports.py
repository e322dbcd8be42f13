"""Review reports (评查结果通报) per unit or district: pure aggregation over scored reviews.

For a period: how many files were reviewed (and how many of them the unit had self-reviewed
first, 自查),  the grade distribution, the average score, the
fail rate, the most common defects (confirmed rubric items) and the same figures for a
comparison period (by default the equally long period just before), so a trend is visible.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

GroupBy = Literal["unit", "district"]


class ReviewRow(BaseModel):
    """What a report needs from one scored review."""

    case_id: str
    unit: str
    district: str
    closed_on: str
    grade: str
    score: float
    defects: list[str] = Field(default_factory=list, description="confirmed rubric item codes")
    failed: bool = False
    self_reviewed: bool = Field(default=False, description="the unit submitted a self-review")


class DefectCount(BaseModel):
    item: str
    text: str
    count: int


class PeriodFigures(BaseModel):
    reviewed: int
    self_reviewed: int = Field(default=0, description="reviewed files the unit self-reviewed")
    grades: dict[str, int]
    average_score: float | None
    fail_rate: float | None


class GroupReport(BaseModel):
    key: str
    name: str
    current: PeriodFigures
    previous: PeriodFigures
    top_defects: list[DefectCount]
    average_delta: float | None = Field(description="current − previous average score")
    fail_rate_delta: float | None


class Report(BaseModel):
    group_by: GroupBy
    period_from: dt.date
    period_to: dt.date
    compare_from: dt.date
    compare_to: dt.date
    grades: list[str]
    groups: list[GroupReport]


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The equally long period ending the day before ``start``."""
    length = (end - start).days + 1
    return start - dt.timedelta(days=length), start - dt.timedelta(days=1)


def figures(rows: Sequence[ReviewRow], grades: Sequence[str]) -> PeriodFigures:
    counts = Counter(r.grade for r in rows)
    n = len(rows)
    return PeriodFigures(
        reviewed=n,
        self_reviewed=sum(1 for r in rows if r.self_reviewed),
        grades={g: counts.get(g, 0) for g in grades},
        average_score=round(sum(r.score for r in rows) / n, 2) if n else None,
        fail_rate=round(sum(1 for r in rows if r.failed) / n, 4) if n else None,
    )


def _delta(a: float | None, b: float | None) -> float | None:
    return round(a - b, 4) if a is not None and b is not None else None


def build_report(
    rows: Iterable[ReviewRow],
    *,
    group_by: GroupBy,
    period: tuple[dt.date, dt.date],
    compare: tuple[dt.date, dt.date],
    grades: Sequence[str],
    item_texts: dict[str, str],
    names: dict[str, str],
    top: int = 5,
) -> Report:
    """Rows outside both periods are ignored; groups appear if they have rows in either."""
    current: dict[str, list[ReviewRow]] = {}
    previous: dict[str, list[ReviewRow]] = {}
    p0, p1 = period[0].isoformat(), period[1].isoformat()
    c0, c1 = compare[0].isoformat(), compare[1].isoformat()
    for row in rows:
        key = row.unit if group_by == "unit" else row.district
        if p0 <= row.closed_on <= p1:
            current.setdefault(key, []).append(row)
        elif c0 <= row.closed_on <= c1:
            previous.setdefault(key, []).append(row)
    groups: list[GroupReport] = []
    for key in sorted(set(current) | set(previous)):
        now, before = current.get(key, []), previous.get(key, [])
        defects = Counter(code for r in now for code in r.defects)
        fig_now, fig_before = figures(now, grades), figures(before, grades)
        groups.append(
            GroupReport(
                key=key,
                name=names.get(key, key),
                current=fig_now,
                previous=fig_before,
                top_defects=[
                    DefectCount(item=code, text=item_texts.get(code, code), count=n)
                    for code, n in sorted(defects.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
                ],
                average_delta=_delta(fig_now.average_score, fig_before.average_score),
                fail_rate_delta=_delta(fig_now.fail_rate, fig_before.fail_rate),
            )
        )
    return Report(
        group_by=group_by,
        period_from=period[0],
        period_to=period[1],
        compare_from=compare[0],
        compare_to=compare[1],
        grades=list(grades),
        groups=groups,
    )


def to_csv(report: Report) -> str:
    """One line per group; Excel opens it (UTF-8 with BOM is added by the API)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            report.group_by,
            "name",
            "period",
            "reviewed",
            "self_reviewed",
            *report.grades,
            "average_score",
            "fail_rate",
            "previous_reviewed",
            "previous_average_score",
            "previous_fail_rate",
            "average_delta",
            "top_defects",
        ]
    )
    period = f"{report.period_from}~{report.period_to}"
    for g in report.groups:
        writer.writerow(
            [
                g.key,
                g.name,
                period,
                g.current.reviewed,
                g.current.self_reviewed,
                *(g.current.grades[x] for x in report.grades),
                "" if g.current.average_score is None else g.current.average_score,
                "" if g.current.fail_rate is None else g.current.fail_rate,
                g.previous.reviewed,
                "" if g.previous.average_score is None else g.previous.average_score,
                "" if g.previous.fail_rate is None else g.previous.fail_rate,
                "" if g.average_delta is None else g.average_delta,
                "; ".join(f"{d.item} {d.text} ×{d.count}" for d in g.top_defects),
            ]
        )
    return out.getvalue()
