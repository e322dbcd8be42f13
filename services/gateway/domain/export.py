"""CSV export and open data (rows 28): pure shaping of the read projections, no I/O.

- Export (``/v1/export/<entity>.csv``): one row per complaint, case review, filing or lead in
  the caller's scope. Columns are an explicit allow-list: no complainant, no free text
  (descriptions, outcomes, summaries may name people or homes), no party names.
- Open data (``/v1/open-data/monthly``, anonymous): counts per district and month only.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.workcalendar import CST

Getter = Callable[[Mapping[str, Any]], Any]


def month_of(at: dt.datetime | str | None) -> str | None:
    """``YYYY-MM`` of an instant in China Standard Time (None: unknown)."""
    if at is None:
        return None
    when = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # MongoDB returns naive UTC
    return when.astimezone(CST).strftime("%Y-%m")


def _top(field: str) -> Getter:
    return lambda doc: doc.get(field)


def _snap(field: str) -> Getter:
    return lambda doc: (doc.get("snapshot") or {}).get(field)


def _count(field: str) -> Getter:
    return lambda doc: len((doc.get("snapshot") or {}).get(field) or [])


@dataclass(frozen=True)
class Column:
    header: str
    get: Getter


def _columns(*pairs: tuple[str, Getter]) -> tuple[Column, ...]:
    return tuple(Column(h, g) for h, g in pairs)


ENTITY_COMMON = (("id", _top("_id")), ("district", _top("district")), ("unit", _top("unit")))

EXPORT_COLUMNS: dict[str, tuple[Column, ...]] = {
    "complaints": _columns(
        *ENTITY_COMMON,
        ("street", _snap("street")),
        ("status", _top("status")),
        ("kind", _snap("kind")),
        ("channel", _snap("channel")),
        ("matter", _snap("matter")),
        ("matter_name", _snap("matter_name")),
        ("received_at", _snap("received_at")),
        ("due", _snap("due")),
        ("overdue", _top("overdue")),
        ("returns", _snap("returns")),
        ("handovers", _snap("handovers")),
        ("resolved_at", _snap("resolved_at")),
        ("verdict", _snap("verdict")),
        ("satisfaction", _snap("satisfaction")),
        ("leads", _count("leads")),
        ("updated_at", _top("updated_at")),
    ),
    "cases": _columns(
        *ENTITY_COMMON,
        ("status", _top("status")),
        ("procedure", _snap("procedure")),
        ("findings", _count("findings")),
        ("grade", _top("grade")),
        ("score", _snap("score")),
        ("rectification_status", _snap("rectification_status")),
        ("rectification_deadline", _snap("rectification_deadline")),
        ("updated_at", _top("updated_at")),
    ),
    "filings": _columns(
        *ENTITY_COMMON,
        ("status", _top("status")),
        ("provision", _snap("provision")),
        ("party_type", _snap("party_type")),
        ("fine", _snap("fine")),
        ("classification", _snap("classification")),
        ("top_tier", _top("top_tier")),
        ("decided_at", _snap("decided_at")),
        ("deadline_last_day", _snap("deadline_last_day")),
        ("filed", _top("filed")),
        ("late", _top("late")),
        ("days_late", _snap("days_late")),
        ("missing", _top("missing")),
        ("updated_at", _top("updated_at")),
    ),
    "leads": _columns(
        ("id", _top("_id")),
        ("kind", _top("kind")),
        ("district", _top("district")),
        ("unit", _top("unit")),
        ("subject_type", _top("subject_type")),
        ("subject_id", _top("subject_id")),
        ("status", _top("status")),
        ("raised_at", _top("raised_at")),
        ("raised_by", _top("raised_by")),
    ),
}
"""Entity → the columns exported, in order (an allow-list: nothing else leaves)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC).isoformat()
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no spreadsheet formulas


def to_csv(columns: Sequence[Column], docs: Iterable[Mapping[str, Any]]) -> str:
    """A CSV text with a BOM (spreadsheets then read the Chinese text as UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.header for c in columns])
    for doc in docs:
        writer.writerow([_cell(c.get(doc)) for c in columns])
    return "\ufeff" + buffer.getvalue()


OPEN_DATA_FIGURES = (
    "complaints",
    "overdue_complaints",
    "bounced_complaints",
    "cases",
    "reviewed_cases",
    "top_tier_filings",
    "filed_late",
    "missing_filings",
    "leads_raised",
    "leads_disposed",
)
"""Aggregate figures published per district and month (counts only: no personal data)."""


def open_data_rows(
    counts: Mapping[str, Mapping[tuple[str, str], int]], names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One row per (district, month) with any figure, every figure present (0 when none)."""
    keys = sorted({k for per in counts.values() for k in per}, key=lambda k: (k[1], k[0]))
    return [
        {
            "district": district,
            "name": names.get(district, district),
            "month": month,
            **{f: int(counts.get(f, {}).get((district, month), 0)) for f in OPEN_DATA_FIGURES},
        }
        for district, month in keys
    ]
