"""Case files (案卷) with their pre-check findings and review state; the unit's 自查."""

from __future__ import annotations

import datetime as dt

from fastapi import Query

from services.casereview import reads
from services.casereview.api.deps import guarded
from services.casereview.domain.commands import SelfReviewSubmission
from services.casereview.handlers import self_review
from services.casereview.schemas import CaseDetail, CaseSummary
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.identity import CallerDep, acting_unit

router = audited_router(prefix="/v1/casereview", tags=["casereview"])


@router.get("/cases", response_model=Page[CaseSummary])
async def list_cases(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    status: str | None = None,
    grade: str | None = None,
    finding: str | None = Query(None, description="a pre-check code, e.g. DOC_MISSING"),
    closed_from: dt.date | None = None,
    closed_to: dt.date | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[CaseSummary]:
    """Case files with their pre-check result and review state."""
    filters = {
        "district": district,
        "unit": unit,
        "status": status,
        "grade": grade,
        "finding_codes": finding,
        "closed_on": reads.between(closed_from, closed_to),
    }
    return await reads.CASES.page(svc, caller, filters, CaseSummary, limit, offset)


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def get_case(case_id: str, svc: ServiceDep, caller: CallerDep) -> CaseDetail:
    """One case file: the file as received, every finding with its rule and evidence."""
    return CaseDetail.of(await reads.CASES.one(svc, caller, case_id))


@router.post("/cases/{case_id}/self-review", response_model=CaseDetail)
async def submit_self_review(
    case_id: str, submission: SelfReviewSubmission, svc: ServiceDep, caller: CallerDep
) -> CaseDetail:
    """The unit's self-review (自查) and 书面自评报告 of its case, as the token's unit;
    a resubmission replaces it until the review starts (then 409)."""
    unit = acting_unit(caller, submission.unit)
    await reads.CASES.one(svc, caller, case_id)
    case = await guarded(
        svc, lambda uow: self_review.submit_self_review(uow, case_id, unit, submission)
    )
    return CaseDetail.of(case.to_doc())
