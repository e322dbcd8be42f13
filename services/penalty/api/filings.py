"""``/v1/penalty/filings``: decided penalties and their filings (备案), filing one as the
token's unit, a supervisor's classification (人工认定) and the bureau's review (审查结论)."""

from __future__ import annotations

from fastapi import Query

from services.penalty import reads
from services.penalty.api.deps import WorkflowDep
from services.penalty.schemas import (
    MONTH,
    ClassificationIn,
    FilingIn,
    FilingOut,
    LetterOut,
    ReviewIn,
    ReviewResult,
)
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param, run_command
from shared.identity import CallerDep, Permission, acting_unit

router = audited_router(prefix="/v1/penalty", tags=["penalty"])


@router.get("/filings", response_model=Page[FilingOut])
async def list_filings(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    status: str | None = None,
    top_tier: bool | None = None,
    large: bool | None = None,
    late: bool | None = None,
    missing: bool | None = None,
    flag: str | None = Query(None, description="e.g. disproportion, late_filing"),
    month: str | None = Query(None, pattern=MONTH),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[FilingOut]:
    """Decided penalties and their filings, newest decision first."""
    filters = {
        "district": district,
        "unit": unit,
        "status": status,
        "top_tier": top_tier,
        "large": large,
        "late": late,
        "missing": missing,
        "flags": flag,
        "month": month,
    }
    return await reads.page(svc, caller, reads.FILINGS, filters, FilingOut, limit, offset)


@router.get("/filings/{case_id}", response_model=FilingOut)
async def one_filing(case_id: str, svc: ServiceDep, caller: CallerDep) -> FilingOut:
    return FilingOut.of(await reads.one(svc, caller, reads.FILINGS, case_id))


@router.post("/filings", response_model=FilingOut, status_code=201)
async def file_penalty(
    body: FilingIn, svc: ServiceDep, workflow: WorkflowDep, caller: CallerDep
) -> FilingOut:
    """备案: the unit files a top-tier penalty with its documents (late ones are flagged)."""
    unit = acting_unit(caller, body.unit)
    await reads.unknown_or_in_scope(svc, caller, body.case_id)
    filing = await run_command(
        svc,
        lambda uow: workflow.file(
            uow,
            case_id=body.case_id,
            unit=unit,
            district=body.district,
            filed_at=body.filed_at,
            documents=body.documents,
        ),
    )
    return FilingOut.of(filing.to_doc())


@router.post("/filings/{case_id}/classification", response_model=FilingOut)
async def classify(
    case_id: str,
    body: ClassificationIn,
    svc: ServiceDep,
    workflow: WorkflowDep,
    caller: CallerDep,
) -> FilingOut:
    """Manual classification of a penalty whose provision is not in the catalogue."""
    caller.require(Permission.SUPERVISE)
    await reads.one(svc, caller, reads.FILINGS, case_id)
    filing = await run_command(
        svc, lambda uow: workflow.classify(uow, case_id, body.top_tier, body.by, body.note)
    )
    return FilingOut.of(filing.to_doc())


@router.post("/filings/{case_id}/review", response_model=ReviewResult, status_code=201)
async def review(
    case_id: str, body: ReviewIn, svc: ServiceDep, workflow: WorkflowDep, caller: CallerDep
) -> ReviewResult:
    """The bureau's answer: accept, 监督建议书 (reply due) or 监督决定书."""
    caller.require(Permission.SUPERVISE)
    await reads.one(svc, caller, reads.FILINGS, case_id)
    filing, letter = await run_command(
        svc, lambda uow: workflow.review(uow, case_id, body.outcome, body.by, body.opinion)
    )
    return ReviewResult(filing=FilingOut.of(filing.to_doc()), letter=LetterOut.of(letter.to_doc()))
