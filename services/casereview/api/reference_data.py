"""The reference data reviews use: the scoring rubric (评查标准) and the reviewer directory."""

from __future__ import annotations

from services.casereview import reads
from services.casereview.api.deps import ReferenceDep
from services.casereview.domain.sampling import Reviewer
from services.casereview.schemas import RubricInfo
from shared.api import Page, audited_router, limit_param, offset_param

router = audited_router(prefix="/v1/casereview", tags=["casereview"])


@router.get("/rubric", response_model=RubricInfo)
async def get_rubric(reference: ReferenceDep, version: str | None = None) -> RubricInfo:
    """The scoring rubric (current version, or the one asked for)."""
    return reads.rubric_info(reference, version)


@router.get("/reviewers", response_model=Page[Reviewer])
async def list_reviewers(
    reference: ReferenceDep,
    district: str | None = None,
    unit: str | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[Reviewer]:
    """The reviewer directory (评查人员名录)."""
    return reads.reviewers_page(reference, district, unit, limit, offset)
