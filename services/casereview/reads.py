"""The casereview read side: lists and items in the caller's scope (all of it needs
``READ_CASES``), the reference data (rubric, reviewer directory) and the review report.
Routes are in ``api``; the read models in ``schemas``.
"""

from __future__ import annotations

import datetime as dt

from fastapi import HTTPException

from services.casereview import storage
from services.casereview.domain.reports import (
    GroupBy,
    Report,
    ReviewRow,
    build_report,
    previous_period,
)
from services.casereview.domain.sampling import Reviewer
from services.casereview.reference import ReferenceData
from services.casereview.schemas import RubricInfo
from shared.api import Page, ScopedCollection
from shared.identity import Caller, Permission, in_scope
from shared.service import Service

Period = tuple[dt.date, dt.date]


CASES = ScopedCollection(
    storage.CASES,
    "case",
    storage.CASES_ORDER,
    Permission.READ_CASES,
    hidden={"file": 0, "findings": 0},
)
CAMPAIGNS = ScopedCollection(
    storage.CAMPAIGNS,
    "campaign",
    storage.CAMPAIGNS_ORDER,
    Permission.READ_CASES,
    hidden={"population": 0, "sample": 0, "assignments": 0},
    scope_fields={"district": "districts", "unit": "units"},  # a campaign lists its scope
)
REVIEWS = ScopedCollection(storage.REVIEWS, "review", storage.REVIEWS_ORDER, Permission.READ_CASES)
RECTIFICATIONS = ScopedCollection(
    storage.RECTIFICATIONS, "rectification", storage.RECTIFICATIONS_ORDER, Permission.READ_CASES
)


def between(low: dt.date | None, high: dt.date | None) -> dict[str, str] | None:
    """An ISO-date range filter from its optional ends (``None``: no filter)."""
    bounds = {op: day.isoformat() for op, day in (("$gte", low), ("$lte", high)) if day is not None}
    return bounds or None


def rubric_info(reference: ReferenceData, version: str | None) -> RubricInfo:
    """The current rubric, or the version asked for (404 when there is no such version)."""
    rubric = reference.rubrics.get(version) if version else reference.rubric
    if rubric is None:
        raise HTTPException(404, detail=f"rubric version {version} not found")
    return RubricInfo(
        current=reference.rubric.version, versions=sorted(reference.rubrics), rubric=rubric
    )


def reviewers_page(
    reference: ReferenceData, district: str | None, unit: str | None, limit: int, offset: int
) -> Page[Reviewer]:
    """The reviewer directory (评查人员名录), filtered by district and unit."""
    rows = [
        reviewer
        for reviewer in reference.directory.reviewers
        if (district is None or reviewer.district == district)
        and (unit is None or reviewer.unit == unit)
    ]
    return Page(total=len(rows), limit=limit, offset=offset, items=rows[offset : offset + limit])


def report_periods(
    reference: ReferenceData, period: Period, compare: tuple[dt.date | None, dt.date | None]
) -> Period:
    """The comparison period of a report (by default the equally long one just before), after
    checking both: 422 with the reason when they are not periods or the report is too long."""
    period_from, period_to = period
    if period_to < period_from:
        raise HTTPException(422, detail="period_to is before period_from")
    longest = reference.settings.report_max_days
    if (period_to - period_from).days >= longest:
        raise HTTPException(422, detail=f"a report period is at most {longest} days")
    compare_from, compare_to = compare
    if (compare_from is None) != (compare_to is None):
        raise HTTPException(422, detail="give both compare_from and compare_to, or neither")
    if compare_from is not None and compare_to is not None:
        if compare_to < compare_from:
            raise HTTPException(422, detail="compare_to is before compare_from")
        return compare_from, compare_to
    try:
        return previous_period(period_from, period_to)
    except OverflowError as exc:
        raise HTTPException(422, detail="no comparison period before year 1") from exc


async def review_report(
    svc: Service,
    reference: ReferenceData,
    caller: Caller,
    group_by: GroupBy,
    period: Period,
    compare: tuple[dt.date | None, dt.date | None],
) -> Report:
    """评查结果通报: the scored reviews of both periods in the caller's scope, by group."""
    compared = report_periods(reference, period, compare)
    low = min(period[0], compared[0]).isoformat()
    high = max(period[1], compared[1]).isoformat()
    caller.require(Permission.READ_CASES)
    rows = [
        ReviewRow.model_validate({**doc, "self_reviewed": doc.get("self_review") is not None})
        for doc in await storage.scored_reviews(svc.db, low, high)
        if in_scope(caller.scope, doc)  # a district's report holds its district only
    ]
    return build_report(
        rows,
        group_by=group_by,
        period=period,
        compare=compared,
        grades=[grade.grade for grade in reference.rubric.grades],
        item_texts=reference.item_texts(),
        names=reference.place_names,
        top=reference.settings.report_top_defects,
    )
