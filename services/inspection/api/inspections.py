"""Inspections (涉企检查), filed plans (检查计划备案) and the district summary."""

from __future__ import annotations

from fastapi import Query

from services.inspection import reads
from services.inspection.schemas import DistrictSummary, InspectionOut, PlanOut
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.identity import CallerDep

router = audited_router(prefix="/v1/inspection", tags=["inspection"])


@router.get("/inspections", response_model=Page[InspectionOut])
async def list_inspections(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    enterprise: str | None = Query(None, description="统一社会信用代码"),
    planned: bool | None = None,
    code_scanned: bool | None = None,
    flag: str | None = Query(None, description="e.g. unplanned_inspection, code_not_shown"),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[InspectionOut]:
    """Inspections, newest first."""
    filters = {
        "district": district,
        "unit": unit,
        "enterprise": enterprise,
        "planned": planned,
        "code_scanned": code_scanned,
        "flags": flag,
    }
    return await reads.INSPECTIONS.page(svc, caller, filters, InspectionOut, limit, offset)


@router.get("/inspections/{inspection_id}", response_model=InspectionOut)
async def one_inspection(svc: ServiceDep, caller: CallerDep, inspection_id: str) -> InspectionOut:
    return InspectionOut.of(await reads.INSPECTIONS.one(svc, caller, inspection_id))


@router.get("/plans", response_model=Page[PlanOut])
async def list_plans(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[PlanOut]:
    """Filed inspection plans (检查计划备案), latest filing first."""
    filters = {"district": district, "unit": unit}
    return await reads.PLANS.page(svc, caller, filters, PlanOut, limit, offset)


@router.get("/summary", response_model=DistrictSummary)
async def district_summary(
    svc: ServiceDep,
    caller: CallerDep,
    district: str = Query(pattern=r"^\d{6}$"),
    days: int | None = Query(None, ge=1, le=3660, description="default: the repeat window"),
    top: int = Query(20, ge=1, le=500, description="enterprises listed"),
) -> DistrictSummary:
    """Inspections of one district in the trailing window: 亮码率, 未备案, per enterprise."""
    return await reads.district_summary(svc, caller, district, days, top)
