"""评查结果通报: grade distribution, common defects and the trend, as JSON or CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Response

from services.casereview import reads
from services.casereview.api.deps import ReferenceDep
from services.casereview.domain.reports import GroupBy, Report, to_csv
from shared.api import ServiceDep, audited_router
from shared.identity import CallerDep

router = audited_router(prefix="/v1/casereview", tags=["casereview"])


async def requested_report(
    svc: ServiceDep,
    reference: ReferenceDep,
    caller: CallerDep,
    period_from: dt.date,
    period_to: dt.date,
    group_by: GroupBy = "district",
    compare_from: dt.date | None = None,
    compare_to: dt.date | None = None,
) -> Report:
    """The report the query asks for (both routes take the same query)."""
    return await reads.review_report(
        svc, reference, caller, group_by, (period_from, period_to), (compare_from, compare_to)
    )


ReportDep = Annotated[Report, Depends(requested_report)]


@router.get("/reports", response_model=Report)
async def get_report(report: ReportDep) -> Report:
    """Grade distribution, common defects and the comparison period, per unit or district."""
    return report


@router.get("/reports.csv", response_class=Response)
async def get_report_csv(report: ReportDep) -> Response:
    """The same report as CSV (UTF-8 with BOM, so spreadsheet tools read the Chinese)."""
    filename = f"casereview-{report.group_by}-{report.period_from}-{report.period_to}.csv"
    return Response(
        content="\ufeff" + to_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
