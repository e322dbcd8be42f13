"""``/v1/penalty/flags`` and ``/v1/penalty/anomalies``: what the service found, for the
supervisors: findings about one filing (逾期, 未备案, 过罚不当, 大额, 待认定) and unit-months
with their fine totals and the explained comparisons (罚没款异常增长)."""

from __future__ import annotations

from fastapi import Query

from services.penalty import reads
from services.penalty.schemas import MONTH, AnomalyOut, FlagKind, FlagOut
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.identity import CallerDep

router = audited_router(prefix="/v1/penalty", tags=["penalty"])


@router.get("/flags", response_model=Page[FlagOut])
async def list_flags(
    svc: ServiceDep,
    caller: CallerDep,
    kind: FlagKind | None = None,
    district: str | None = None,
    unit: str | None = None,
    case_id: str | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[FlagOut]:
    filters = {"kind": kind, "district": district, "unit": unit, "case_id": case_id}
    return await reads.page(svc, caller, reads.FLAGS, filters, FlagOut, limit, offset)


@router.get("/anomalies", response_model=Page[AnomalyOut])
async def list_anomalies(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    unit_kind: str | None = None,
    month: str | None = Query(None, pattern=MONTH),
    anomalous: bool | None = Query(None, description="current judgement of the month"),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[AnomalyOut]:
    """Unit-months with their totals and the explained comparisons."""
    filters = {
        "district": district,
        "unit": unit,
        "unit_kind": unit_kind,
        "month": month,
        "anomalous": anomalous,
    }
    return await reads.page(svc, caller, reads.ANOMALIES, filters, AnomalyOut, limit, offset)
