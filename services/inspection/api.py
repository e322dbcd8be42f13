"""HTTP API of the inspection service under ``/v1/inspection``: inspections, plans, the
officer registry, review outcomes, 持证率 / 被纠错率, flags, and a district summary
(frequency per enterprise, 亮码率, 未备案 count).

Lists are paginated (``limit``, ``offset``) and filterable; bad input answers 4xx with the
reason, never 500.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.inspection import storage
from services.inspection.settings import InspectionSettings
from shared.api import Out, Page, ScopedReads, audited_router, limit_param, offset_param
from shared.identity import (
    CallerDep,
    Permission,
    district_in_scope,
)
from shared.service import Service

District = Query(pattern=r"^\d{6}$")


class InspectionOut(Out):
    id: str = Field(description="inspection_id")
    district: str
    unit: str
    enterprise: str
    enterprise_name: str | None = None
    sector: str | None = None
    at: dt.datetime
    day: str
    code_scanned: bool
    joint_id: str | None = None
    plan_id: str | None = None
    planned: bool
    result: str
    officers: list[dict[str, Any]]
    uncertified_officers: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class PlanOut(Out):
    id: str = Field(description="plan_id")
    unit: str
    district: str
    period_start: dt.date
    period_end: dt.date
    enterprises: list[str]
    sectors: list[str]
    double_random: bool
    filed_at: dt.datetime
    revision: int = 1


class OfficerOut(Out):
    id: str = Field(description="officer_id")
    unit: str
    district: str
    registered: bool
    status: str
    cert_no: str | None = None
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    suspended_since: dt.date | None = None
    suspended_until: dt.date | None = None
    revoked_since: dt.date | None = None
    reason: str | None = None


class ReviewOut(Out):
    id: str = Field(description="review_id")
    case_id: str
    unit: str
    district: str
    channel: str
    outcome: str
    corrected: bool
    decided_at: dt.datetime
    body: str | None = None


class RateOut(Out):
    id: str
    metric: Literal["certification", "correction"]
    scope: Literal["unit", "district"]
    key: str
    district: str
    unit: str | None = None
    numerator: int
    denominator: int
    rate: float | None
    line: float
    breached: bool
    crossings: int
    lead_id: str | None = None


class FlagOut(Out):
    id: str
    kind: str
    district: str
    unit: str | None = None
    subject_type: str
    subject_id: str
    inspection_id: str | None = None
    summary: str
    evidence: dict[str, Any]
    lead_id: str
    raised_at: dt.datetime


class EnterpriseFrequency(BaseModel):
    enterprise: str
    visits: int = Field(description="joint inspections counted once (综合查一次)")
    inspections: int
    units: int


class DistrictSummary(BaseModel):
    district: str
    since: dt.datetime
    inspections: int
    code_scanned: int
    code_rate: float | None = Field(description="亮码率")
    unplanned: int = Field(description="未备案检查")
    uncertified: int = Field(description="inspections with an officer without a valid cert")
    enterprises: list[EnterpriseFrequency] = Field(description="most inspected first")


def build_router(svc: Service) -> APIRouter:
    router = audited_router(prefix="/v1/inspection", tags=["inspection"])
    Limit, Offset = limit_param(), offset_param()
    settings = svc.settings
    assert isinstance(settings, InspectionSettings)
    reads = ScopedReads(svc, Permission.READ_INSPECTIONS)

    @router.get("/inspections", response_model=Page[InspectionOut])
    async def list_inspections(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        enterprise: str | None = Query(None, description="统一社会信用代码"),
        planned: bool | None = None,
        code_scanned: bool | None = None,
        flag: str | None = Query(None, description="e.g. unplanned_inspection, code_not_shown"),
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[InspectionOut]:
        """Inspections, newest first."""
        query = storage.filters(
            district=district,
            unit=unit,
            enterprise=enterprise,
            planned=planned,
            code_scanned=code_scanned,
            flags=flag,
        )
        total, docs = await reads.page(
            caller, storage.INSPECTIONS, query, storage.INSPECTIONS_ORDER, limit, offset
        )
        return Page(
            total=total, limit=limit, offset=offset, items=[InspectionOut.of(d) for d in docs]
        )

    @router.get("/inspections/{inspection_id}", response_model=InspectionOut)
    async def one_inspection(caller: CallerDep, inspection_id: str) -> InspectionOut:
        return InspectionOut.of(
            await reads.one(caller, storage.INSPECTIONS, inspection_id, "inspection")
        )

    @router.get("/plans", response_model=Page[PlanOut])
    async def list_plans(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[PlanOut]:
        """Filed inspection plans (检查计划备案), latest filing first."""
        query = storage.filters(district=district, unit=unit)
        total, docs = await reads.page(
            caller, storage.PLANS, query, storage.PLANS_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[PlanOut.of(d) for d in docs])

    @router.get("/officers", response_model=Page[OfficerOut])
    async def list_officers(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        status: Literal["valid", "suspended", "revoked", "expired", "not_yet_valid", "unregistered"]
        | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[OfficerOut]:
        """The officer registry (执法人员资格管理), by unit."""
        query = storage.filters(district=district, unit=unit, status=status)
        total, docs = await reads.page(
            caller, storage.OFFICERS, query, storage.OFFICERS_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[OfficerOut.of(d) for d in docs])

    @router.get("/officers/{officer_id}", response_model=OfficerOut)
    async def one_officer(caller: CallerDep, officer_id: str) -> OfficerOut:
        return OfficerOut.of(await reads.one(caller, storage.OFFICERS, officer_id, "officer"))

    @router.get("/reviews", response_model=Page[ReviewOut])
    async def list_reviews(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        outcome: Literal["upheld", "revised", "revoked", "confirmed_illegal"] | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[ReviewOut]:
        """行政复议 / 行政诉讼 / 检察建议 outcomes, newest first."""
        query = storage.filters(district=district, unit=unit, outcome=outcome)
        total, docs = await reads.page(
            caller, storage.REVIEWS, query, storage.REVIEWS_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[ReviewOut.of(d) for d in docs])

    @router.get("/rates", response_model=Page[RateOut])
    async def list_rates(
        caller: CallerDep,
        district: str | None = None,
        scope: Literal["unit", "district"] | None = None,
        breached: bool | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[RateOut]:
        """持证率 and 被纠错率 per unit and per district, with the line each is judged against."""
        query = storage.filters(district=district, scope=scope, breached=breached)
        total, docs = await reads.page(
            caller, storage.RATES, query, storage.RATES_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[RateOut.of(d) for d in docs])

    @router.get("/flags", response_model=Page[FlagOut])
    async def list_flags(
        caller: CallerDep,
        kind: Literal[
            "unplanned_inspection",
            "repeated_inspection",
            "code_not_shown",
            "uncertified_officer",
            "low_certification_rate",
            "high_correction_rate",
        ]
        | None = None,
        district: str | None = None,
        unit: str | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[FlagOut]:
        """Findings, newest first; each raised its lead on ``supervision.leads``."""
        query = storage.filters(kind=kind, district=district, unit=unit)
        total, docs = await reads.page(
            caller, storage.FLAGS, query, storage.FLAGS_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[FlagOut.of(d) for d in docs])

    @router.get("/summary", response_model=DistrictSummary)
    async def district_summary(
        caller: CallerDep,
        district: str = District,
        days: int | None = Query(None, ge=1, le=3660, description="default: the repeat window"),
        top: int = Query(20, ge=1, le=500, description="enterprises listed"),
    ) -> DistrictSummary:
        """Inspections of one district in the trailing window: 亮码率, 未备案, per enterprise."""
        caller.require(Permission.READ_INSPECTIONS)
        district_in_scope(caller, district)
        since = svc.clock.now() - dt.timedelta(days=days or settings.repeat_window_days)
        totals, enterprises = await storage.district_summary(svc.db, district, since, top)
        count = int(totals.get("inspections", 0))
        scanned = int(totals.get("code_scanned", 0))
        return DistrictSummary(
            district=district,
            since=since,
            inspections=count,
            code_scanned=scanned,
            code_rate=scanned / count if count else None,
            unplanned=int(totals.get("unplanned", 0)),
            uncertified=int(totals.get("uncertified", 0)),
            enterprises=[EnterpriseFrequency(**e) for e in enterprises],
        )

    return router
