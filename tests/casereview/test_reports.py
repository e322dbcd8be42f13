"""Report aggregation (pure): grade distribution, common defects, period comparison, CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

from services.casereview.domain.reports import ReviewRow, build_report, previous_period, to_csv

GRADES = ["优秀", "合格", "基本合格", "不合格"]


def row(
    unit: str, closed_on: str, grade: str, score: float, *defects: str, own: bool = False
) -> ReviewRow:
    return ReviewRow(
        case_id=f"{unit}-{closed_on}-{score}",
        unit=unit,
        district=unit[:6],
        closed_on=closed_on,
        grade=grade,
        score=score,
        defects=list(defects),
        failed=grade == "不合格",
        self_reviewed=own,
    )


ROWS = [
    row("310106-cgzf", "2025-04-03", "优秀", 95, "T1", own=True),
    row("310106-cgzf", "2025-04-20", "不合格", 0, "V7", "T1"),
    row("310106-scjg", "2025-04-11", "合格", 80, "W1", "T1"),
    row("310106-cgzf", "2025-03-15", "合格", 76, "W1"),
    row("310101-cgzf", "2025-02-01", "优秀", 99),  # outside both periods
]


def test_previous_period_is_equally_long_and_adjacent() -> None:
    assert previous_period(dt.date(2025, 4, 1), dt.date(2025, 4, 30)) == (
        dt.date(2025, 3, 2),
        dt.date(2025, 3, 31),
    )


def test_report_by_unit_and_district_with_comparison() -> None:
    period = (dt.date(2025, 4, 1), dt.date(2025, 4, 30))
    kw = {"period": period, "compare": previous_period(*period), "grades": GRADES}
    by_unit = build_report(ROWS, group_by="unit", item_texts={"T1": "未公示"}, names={}, **kw)
    assert [g.key for g in by_unit.groups] == ["310106-cgzf", "310106-scjg"]
    cgzf = by_unit.groups[0]
    assert cgzf.current.grades == {"优秀": 1, "合格": 0, "基本合格": 0, "不合格": 1}
    assert (cgzf.current.average_score, cgzf.current.fail_rate) == (47.5, 0.5)
    assert (cgzf.current.self_reviewed, cgzf.previous.self_reviewed) == (1, 0)  # seed 002 自查
    assert cgzf.previous.reviewed == 1 and cgzf.previous.average_score == 76
    assert cgzf.average_delta == 47.5 - 76
    assert [(d.item, d.text, d.count) for d in cgzf.top_defects] == [
        ("T1", "未公示", 2),
        ("V7", "V7", 1),
    ]
    by_district = build_report(ROWS, group_by="district", item_texts={}, names={}, **kw)
    (jingan,) = by_district.groups
    assert jingan.current.reviewed == 3 and jingan.top_defects[0].item == "T1"
    assert jingan.top_defects[0].count == 3
    lines = list(csv.reader(io.StringIO(to_csv(by_district))))
    assert lines[1][0] == "310106" and lines[1][3] == "3"
    assert lines[1][lines[0].index("不合格")] == "1"
    assert lines[1][lines[0].index("self_reviewed")] == "1"
