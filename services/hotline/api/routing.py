"""``/v1/routing``: the routing catalogue (派单目录) — read, preview where a work order would
go, and change who handles a matter in a district."""

from __future__ import annotations

from fastapi import Query

from services.hotline import reads
from services.hotline.api.deps import WorkflowDep
from services.hotline.domain.routing import Level, Route
from services.hotline.schemas import MattersOut, RoutingIn, RoutingOut
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param, run_command
from shared.identity import CallerDep, Permission, acting_person, district_in_scope
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork

router = audited_router(tags=["hotline"])


@router.get("/v1/routing", response_model=Page[RoutingOut])
async def list_routing(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = Query(None, pattern=r"^\d{6}$"),
    matter: str | None = Query(None, max_length=64),
    level: Level | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[RoutingOut]:
    total, docs = await reads.routing_page(
        svc.db, caller, district=district, matter=matter, level=level, limit=limit, offset=offset
    )
    items = [RoutingOut.model_validate(doc) for doc in docs]
    return Page(total=total, limit=limit, offset=offset, items=items)


@router.get("/v1/routing/matters", response_model=MattersOut)
async def matters(workflow: WorkflowDep) -> MattersOut:
    """The matter keyword table used to classify work orders without a category."""
    table = workflow.matters
    return MattersOut(version=table.version, matters=table.matters)


@router.get("/v1/routing/preview", response_model=Route)
async def preview(
    svc: ServiceDep,
    workflow: WorkflowDep,
    district: str = Query(pattern=r"^\d{6}$"),
    matter: str | None = Query(None, max_length=64),
    street: str | None = Query(None, max_length=100),
) -> Route:
    """Where a work order with this district, street and matter would go now."""
    return await reads.preview(svc.db, workflow, district, matter, street)


@router.get("/v1/routing/{district}/{matter}", response_model=RoutingOut)
async def get_routing(district: str, matter: str, svc: ServiceDep, caller: CallerDep) -> RoutingOut:
    return RoutingOut.model_validate(await reads.routing_entry(svc.db, caller, district, matter))


@router.put("/v1/routing/{district}/{matter}", response_model=RoutingOut)
async def put_routing(
    district: str,
    matter: str,
    body: RoutingIn,
    svc: ServiceDep,
    workflow: WorkflowDep,
    caller: CallerDep,
) -> RoutingOut:
    """Change who handles a matter in a district (new work orders follow at once); the
    district's bureau or the city's."""
    caller.require(Permission.SUPERVISE)
    district_in_scope(caller, district)
    by = acting_person(caller, body.by)

    async def update(uow: UnitOfWork) -> Document:
        return await workflow.update_routing(
            uow,
            district,
            matter,
            level=body.level,
            unit=body.unit,
            streets=body.streets,
            by=by,
            at=uow.now(),
        )

    return RoutingOut.model_validate(await run_command(svc, update))
