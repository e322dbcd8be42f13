"""The officer registry (执法人员资格管理), review outcomes (纠错), 持证率 / 被纠错率 and the
findings (flags) each of which raised a lead."""

from __future__ import annotations

from typing import Literal

from services.inspection import reads
from services.inspection.schemas import FlagOut, OfficerOut, RateOut, ReviewOut
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.identity import CallerDep

router = audited_router(prefix="/v1/inspection", tags=["inspection"])

OfficerStatus = Literal["valid", "suspended", "revoked", "expired", "not_yet_valid", "unregistered"]
FlagKind = Literal[
    "unplanned_inspection",
    "repeated_inspection",
    "code_not_shown",
    "uncertified_officer",
    "low_certification_rate",
    "high_correction_rate",
]


@router.get("/officers", response_model=Page[OfficerOut])
async def list_officers(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    status: OfficerStatus | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[OfficerOut]:
    """The officer registry (执法人员资格管理), by unit."""
    filters = {"district": district, "unit": unit, "status": status}
    return await reads.OFFICERS.page(svc, caller, filters, OfficerOut, limit, offset)


@router.get("/officers/{officer_id}", response_model=OfficerOut)
async def one_officer(svc: ServiceDep, caller: CallerDep, officer_id: str) -> OfficerOut:
    return OfficerOut.of(await reads.OFFICERS.one(svc, caller, officer_id))


@router.get("/reviews", response_model=Page[ReviewOut])
async def list_reviews(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    outcome: Literal["upheld", "revised", "revoked", "confirmed_illegal"] | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[ReviewOut]:
    """行政复议 / 行政诉讼 / 检察建议 outcomes, newest first."""
    filters = {"district": district, "unit": unit, "outcome": outcome}
    return await reads.REVIEWS.page(svc, caller, filters, ReviewOut, limit, offset)


@router.get("/rates", response_model=Page[RateOut])
async def list_rates(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    scope: Literal["unit", "district"] | None = None,
    breached: bool | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[RateOut]:
    """持证率 and 被纠错率 per unit and per district, with the line each is judged against."""
    filters = {"district": district, "scope": scope, "breached": breached}
    return await reads.RATES.page(svc, caller, filters, RateOut, limit, offset)


@router.get("/flags", response_model=Page[FlagOut])
async def list_flags(
    svc: ServiceDep,
    caller: CallerDep,
    kind: FlagKind | None = None,
    district: str | None = None,
    unit: str | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[FlagOut]:
    """Findings, newest first; each raised its lead on ``supervision.leads``."""
    filters = {"kind": kind, "district": district, "unit": unit}
    return await reads.FLAGS.page(svc, caller, filters, FlagOut, limit, offset)
