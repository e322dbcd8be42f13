"""整改: the rectification orders, the unit's answer (整改报告), the supervisor's verdict."""

from __future__ import annotations

from typing import Literal

from services.casereview import reads
from services.casereview.api.deps import RectificationsDep, guarded
from services.casereview.domain.commands import RectificationAnswer, RectificationVerdict
from services.casereview.schemas import RectificationOut
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.identity import CallerDep, Permission, acting_unit

router = audited_router(prefix="/v1/casereview", tags=["casereview"])


@router.get("/rectifications", response_model=Page[RectificationOut])
async def list_rectifications(
    svc: ServiceDep,
    caller: CallerDep,
    status: Literal["open", "overdue", "answered", "closed"] | None = None,
    unit: str | None = None,
    district: str | None = None,
    overdue: bool | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[RectificationOut]:
    filters = {"status": status, "unit": unit, "district": district, "overdue": overdue}
    return await reads.RECTIFICATIONS.page(svc, caller, filters, RectificationOut, limit, offset)


@router.get("/rectifications/{rect_id}", response_model=RectificationOut)
async def get_rectification(rect_id: str, svc: ServiceDep, caller: CallerDep) -> RectificationOut:
    return RectificationOut.of(await reads.RECTIFICATIONS.one(svc, caller, rect_id))


@router.post("/rectifications/{rect_id}/answer", response_model=RectificationOut)
async def answer_rectification(
    rect_id: str,
    answer: RectificationAnswer,
    svc: ServiceDep,
    rectifications: RectificationsDep,
    caller: CallerDep,
) -> RectificationOut:
    """The unit reports what it rectified (整改报告), as the token's unit."""
    unit = acting_unit(caller, answer.unit)
    await reads.RECTIFICATIONS.one(svc, caller, rect_id)
    answer = answer.model_copy(update={"unit": unit})
    rect = await guarded(svc, lambda uow: rectifications.answer(uow, rect_id, answer))
    return RectificationOut.of(rect.to_doc())


@router.post("/rectifications/{rect_id}/close", response_model=RectificationOut)
async def close_rectification(
    rect_id: str,
    verdict: RectificationVerdict,
    svc: ServiceDep,
    rectifications: RectificationsDep,
    caller: CallerDep,
) -> RectificationOut:
    """The supervisor accepts the answer (closed) or sends it back with a new deadline."""
    caller.require(Permission.SUPERVISE)
    await reads.RECTIFICATIONS.one(svc, caller, rect_id)
    rect = await guarded(svc, lambda uow: rectifications.close(uow, rect_id, verdict))
    return RectificationOut.of(rect.to_doc())
