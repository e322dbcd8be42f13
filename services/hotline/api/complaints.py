"""``/v1/complaints``: the list, one complaint with its timeline, and the unit actions on it
(签收, 退单, 重新派单, 延期申请, 延期审批, 办结)."""

from __future__ import annotations

from fastapi import Query

from services.hotline import reads
from services.hotline.api.deps import UnitActionsDep, WorkflowDep
from services.hotline.domain.lifecycle import Status
from services.hotline.schemas import (
    ComplaintDetail,
    ComplaintSummary,
    ExtensionDecisionIn,
    ExtensionIn,
    RerouteIn,
    ResolveIn,
    ReturnIn,
    UnitAction,
    detail,
)
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.clock import Instant
from shared.identity import CallerDep

router = audited_router(tags=["hotline"])


@router.get("/v1/complaints", response_model=Page[ComplaintSummary])
async def list_complaints(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = Query(None, pattern=r"^\d{6}$"),
    unit: str | None = Query(None, max_length=100),
    status: Status | None = None,
    overdue: bool | None = None,
    matter: str | None = Query(None, max_length=64),
    received_from: Instant | None = None,
    received_to: Instant | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[ComplaintSummary]:
    """Complaints, newest first, filtered by district, unit, status, overdue, matter and
    the received date range (within the caller's scope)."""
    total, docs = await reads.complaint_page(
        svc.db,
        caller,
        district=district,
        unit=unit,
        status=status,
        overdue=overdue,
        matter=matter,
        received_from=received_from,
        received_to=received_to,
        limit=limit,
        offset=offset,
    )
    items = [ComplaintSummary.model_validate({"id": doc["_id"], **doc}) for doc in docs]
    return Page(total=total, limit=limit, offset=offset, items=items)


@router.get("/v1/complaints/{order_id}", response_model=ComplaintDetail)
async def get_complaint(order_id: str, svc: ServiceDep, caller: CallerDep) -> ComplaintDetail:
    return detail(await reads.complaint(svc.db, caller, order_id))


@router.post("/v1/complaints/{order_id}/acknowledge", response_model=ComplaintDetail)
async def acknowledge(
    order_id: str, body: UnitAction, actions: UnitActionsDep, workflow: WorkflowDep
) -> ComplaintDetail:
    """签收 by the unit holding the complaint."""
    return await actions.run(order_id, body, workflow.acknowledge)


@router.post("/v1/complaints/{order_id}/return", response_model=ComplaintDetail)
async def return_order(
    order_id: str, body: ReturnIn, actions: UnitActionsDep, workflow: WorkflowDep
) -> ComplaintDetail:
    """退单 with a reason; the complaint is re-dispatched at once (catalogue or triage)."""
    return await actions.run(order_id, body, workflow.return_order, body.reason)


@router.post("/v1/complaints/{order_id}/reroute", response_model=ComplaintDetail)
async def reroute(
    order_id: str, body: RerouteIn, actions: UnitActionsDep, workflow: WorkflowDep
) -> ComplaintDetail:
    """重新派单 from the triage queue, by the district bureau (or the city bureau)."""
    return await actions.supervise(order_id, body, workflow.reroute, body.to_unit, body.reason)


@router.post("/v1/complaints/{order_id}/extension", response_model=ComplaintDetail)
async def request_extension(
    order_id: str, body: ExtensionIn, actions: UnitActionsDep, workflow: WorkflowDep
) -> ComplaintDetail:
    """延期申请, before the deadline, by the unit holding the complaint."""
    return await actions.run(order_id, body, workflow.request_extension, body.days, body.reason)


@router.post("/v1/complaints/{order_id}/extension/decision", response_model=ComplaintDetail)
async def decide_extension(
    order_id: str, body: ExtensionDecisionIn, actions: UnitActionsDep, workflow: WorkflowDep
) -> ComplaintDetail:
    """延期审批 by the supervising bureau; an approval moves the deadline."""
    command = workflow.decide_extension
    return await actions.supervise(order_id, body, command, body.approved, body.note)


@router.post("/v1/complaints/{order_id}/resolve", response_model=ComplaintDetail)
async def resolve(
    order_id: str, body: ResolveIn, actions: UnitActionsDep, workflow: WorkflowDep
) -> ComplaintDetail:
    """办结 with the outcome (and whether a violation was confirmed)."""
    return await actions.run(order_id, body, workflow.resolve, body.outcome, body.verdict)
