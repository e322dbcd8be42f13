"""HTTP API of the hotline service: complaints (``/v1/complaints``: list, one with its
timeline, unit actions) and the routing catalogue (``/v1/routing``: read, preview, update).

Every route needs a bearer token (``shared.identity``): lists and reads are limited to the
caller's district or unit (another district's complaint answers 404), personal data is masked
by role. Unit actions act as the unit in the token: the body's ``unit`` may be left out and a
body naming another unit is refused (403); ``by`` may repeat the token's subject, which is
who acts. An action that does not fit the complaint's state answers 409 with the reason. Lists
are paginated (``limit``, ``offset``) and filterable; bad input answers 4xx, never 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from services.hotline import storage
from services.hotline.domain.lifecycle import (
    Complainant,
    Complaint,
    Extension,
    Status,
    TimelineEntry,
    Verdict,
)
from services.hotline.domain.matters import Matter
from services.hotline.domain.routing import Level, Route, RoutingEntry, route, validate_entry
from services.hotline.handlers import HotlineWorkflow
from shared.api import Page, audited_router, limit_param, offset_param, run_command
from shared.clock import Instant
from shared.identity import (
    Caller,
    CallerDep,
    Permission,
    acting_person,
    acting_unit,
    district_in_scope,
    require_in_scope,
    within,
)
from shared.service import Service
from shared.unit_of_work import UnitOfWork

T = TypeVar("T")

Unit = Field(
    default=None,
    min_length=1,
    max_length=100,
    description="the acting unit, e.g. 310106-cgzf; must be the token's (default)",
)
By = Field(
    default=None, min_length=1, max_length=100, description="the officer's name (default: token)"
)


class ComplaintSummary(BaseModel):
    """One row of the complaint list."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="12345 order_id")
    district: str
    street: str | None
    address: str
    kind: str
    matter: str | None
    matter_name: str | None
    status: Status
    unit: str | None
    unit_level: str | None
    received_at: dt.datetime
    ack_due: dt.datetime | None
    due: dt.datetime | None
    overdue: bool
    escalated: bool
    returns: int
    handovers: int
    duplicate_of: str | None = Field(
        default=None, description="重复件: the first complaint of the same problem and place"
    )
    updated_at: dt.datetime | None


class ComplaintDetail(ComplaintSummary):
    """One complaint with its timeline (personal data of the complainant included)."""

    street_text: str | None
    target: str | None
    channel: str
    category: str | None
    classified_by: str
    description: str
    complainant: Complainant
    matter_level: str | None
    dispatched_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    limit_days: int | None
    ack_late: bool
    units_seen: list[str]
    extension: Extension | None
    extensions: list[Extension]
    outcome: str | None
    verdict: Verdict | None
    satisfaction: int | None
    case_ids: list[str]
    leads: list[str]
    duplicates: list[str] = Field(
        default_factory=list, description="later reports linked to this one as duplicates"
    )
    timeline: list[TimelineEntry]


def detail(c: Complaint) -> ComplaintDetail:
    return ComplaintDetail.model_validate(c.model_dump())


class UnitAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str | None = Unit
    by: str | None = By


class ReturnIn(UnitAction):
    reason: str = Field(min_length=1, max_length=2000, description="退单理由")


class RerouteIn(UnitAction):
    to_unit: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)


class ExtensionIn(UnitAction):
    days: int = Field(ge=1, le=60, description="working days asked for")
    reason: str = Field(min_length=1, max_length=2000, description="延期理由")


class ExtensionDecisionIn(UnitAction):
    approved: bool
    note: str | None = Field(default=None, max_length=2000)


class ResolveIn(UnitAction):
    outcome: str = Field(min_length=1, max_length=4000, description="办理结果")
    violation_confirmed: bool | None = Field(
        default=None, description="违法行为成立 (starts the 应立尽立 watch)"
    )
    verdict: Verdict | None = None


class RoutingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Level
    unit: str = Field(min_length=1, max_length=100)
    streets: dict[str, str] = Field(default_factory=dict)
    by: str | None = By


class RoutingOut(RoutingEntry):
    model_config = ConfigDict(extra="ignore")
    version: int = 1
    source: str | None = None
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


class MattersOut(BaseModel):
    version: str
    matters: list[Matter]


def _filters(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def build_router(svc: Service, workflow: HotlineWorkflow) -> APIRouter:
    router = audited_router(tags=["hotline"])
    Limit, Offset = limit_param(), offset_param()

    def scoped(caller: Caller, c: Complaint | None, order_id: str) -> Complaint:
        caller.require(Permission.READ_COMPLAINTS)
        doc = {"district": c.district, "unit": c.unit} if c is not None else None
        require_in_scope(caller, doc, f"complaint {order_id}")
        assert c is not None
        return c

    async def act(
        caller: Caller,
        order_id: str,
        action: Callable[[UnitOfWork, Complaint], Awaitable[None]],
    ) -> ComplaintDetail:
        async def in_scope(uow: UnitOfWork, c: Complaint) -> None:
            scoped(caller, c, order_id)
            await action(uow, c)

        async def work(uow: UnitOfWork) -> Complaint:
            return await workflow.command(uow, order_id, lambda c: in_scope(uow, c))

        return detail(await run_command(svc, work))

    def actor(caller: Caller, body: UnitAction) -> tuple[str, str]:
        """The unit and person acting: the token's (a body naming another unit → 403)."""
        return acting_unit(caller, body.unit), acting_person(caller, body.by)

    def supervisor(caller: Caller, body: UnitAction) -> tuple[str, str]:
        caller.require(Permission.SUPERVISE)
        return actor(caller, body)

    # ------------------------------------------------------------------ complaints

    @router.get("/v1/complaints", response_model=Page[ComplaintSummary])
    async def list_complaints(
        caller: CallerDep,
        district: str | None = Query(None, pattern=r"^\d{6}$"),
        unit: str | None = Query(None, max_length=100),
        status: Status | None = None,
        overdue: bool | None = None,
        matter: str | None = Query(None, max_length=64),
        received_from: Instant | None = None,
        received_to: Instant | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[ComplaintSummary]:
        """Complaints, newest first, filtered by district, unit, status, overdue, matter and
        the received date range (within the caller's scope)."""
        caller.require(Permission.READ_COMPLAINTS)
        query = _filters(
            district=district, unit=unit, status=status, overdue=overdue, matter=matter
        )
        if received_from or received_to:
            query["received_at"] = _filters(**{"$gte": received_from, "$lt": received_to})
        total, docs = await storage.page(
            svc.db,
            within(caller.scope, query),
            limit=limit,
            offset=offset,
            projection={"timeline": 0, "applied_updates": 0},
        )
        items = [ComplaintSummary.model_validate({"id": d["_id"], **d}) for d in docs]
        return Page(total=total, limit=limit, offset=offset, items=items)

    @router.get("/v1/complaints/{order_id}", response_model=ComplaintDetail)
    async def get_complaint(order_id: str, caller: CallerDep) -> ComplaintDetail:
        c = await storage.read_complaint(svc.db, order_id)
        return detail(scoped(caller, c, order_id))

    @router.post("/v1/complaints/{order_id}/acknowledge", response_model=ComplaintDetail)
    async def acknowledge(order_id: str, body: UnitAction, caller: CallerDep) -> ComplaintDetail:
        """签收 by the unit holding the complaint."""
        unit, by = actor(caller, body)
        return await act(
            caller, order_id, lambda uow, c: workflow.acknowledge(uow, c, unit, by, uow.now())
        )

    @router.post("/v1/complaints/{order_id}/return", response_model=ComplaintDetail)
    async def return_order(order_id: str, body: ReturnIn, caller: CallerDep) -> ComplaintDetail:
        """退单 with a reason; the complaint is re-dispatched at once (catalogue or triage)."""
        unit, by = actor(caller, body)
        return await act(
            caller,
            order_id,
            lambda uow, c: workflow.return_order(uow, c, unit, by, uow.now(), body.reason),
        )

    @router.post("/v1/complaints/{order_id}/reroute", response_model=ComplaintDetail)
    async def reroute(order_id: str, body: RerouteIn, caller: CallerDep) -> ComplaintDetail:
        """重新派单 from the triage queue, by the district bureau (or the city bureau)."""
        unit, by = supervisor(caller, body)
        return await act(
            caller,
            order_id,
            lambda uow, c: workflow.reroute(uow, c, unit, by, uow.now(), body.to_unit, body.reason),
        )

    @router.post("/v1/complaints/{order_id}/extension", response_model=ComplaintDetail)
    async def request_extension(
        order_id: str, body: ExtensionIn, caller: CallerDep
    ) -> ComplaintDetail:
        """延期申请, before the deadline, by the unit holding the complaint."""
        unit, by = actor(caller, body)
        return await act(
            caller,
            order_id,
            lambda uow, c: workflow.request_extension(
                uow, c, unit, by, uow.now(), body.days, body.reason
            ),
        )

    @router.post("/v1/complaints/{order_id}/extension/decision", response_model=ComplaintDetail)
    async def decide_extension(
        order_id: str, body: ExtensionDecisionIn, caller: CallerDep
    ) -> ComplaintDetail:
        """延期审批 by the supervising bureau; an approval moves the deadline."""
        unit, by = supervisor(caller, body)
        return await act(
            caller,
            order_id,
            lambda uow, c: workflow.decide_extension(
                uow, c, unit, by, uow.now(), body.approved, body.note
            ),
        )

    @router.post("/v1/complaints/{order_id}/resolve", response_model=ComplaintDetail)
    async def resolve(order_id: str, body: ResolveIn, caller: CallerDep) -> ComplaintDetail:
        """办结 with the outcome (and whether a violation was confirmed)."""
        verdict = body.verdict
        if verdict is None and body.violation_confirmed is not None:
            verdict = "violation_confirmed" if body.violation_confirmed else "no_violation"
        elif (
            verdict is not None
            and body.violation_confirmed is not None
            and ((verdict == "violation_confirmed") != body.violation_confirmed)
        ):
            raise HTTPException(422, detail="verdict and violation_confirmed disagree")
        unit, by = actor(caller, body)
        return await act(
            caller,
            order_id,
            lambda uow, c: workflow.resolve(uow, c, unit, by, uow.now(), body.outcome, verdict),
        )

    # ------------------------------------------------------------------ routing catalogue

    @router.get("/v1/routing", response_model=Page[RoutingOut])
    async def list_routing(
        caller: CallerDep,
        district: str | None = Query(None, pattern=r"^\d{6}$"),
        matter: str | None = Query(None, max_length=64),
        level: Level | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[RoutingOut]:
        query = _filters(district=district, matter=matter, level=level)
        total, docs = await storage.list_entries(
            svc.db, within(caller.scope, query), limit=limit, offset=offset
        )
        return Page(
            total=total,
            limit=limit,
            offset=offset,
            items=[RoutingOut.model_validate(d) for d in docs],
        )

    @router.get("/v1/routing/matters", response_model=MattersOut)
    async def matters() -> MattersOut:
        """The matter keyword table used to classify work orders without a category."""
        table = workflow.matters
        return MattersOut(version=table.version, matters=table.matters)

    @router.get("/v1/routing/preview", response_model=Route)
    async def preview(
        district: str = Query(pattern=r"^\d{6}$"),
        matter: str | None = Query(None, max_length=64),
        street: str | None = Query(None, max_length=100),
    ) -> Route:
        """Where a work order with this district, street and matter would go now."""
        known = workflow.matters.get(matter)
        code = known.code if known else None
        entry = await storage.read_entry(svc.db, district, code) if code else None
        return route(workflow.city, district, street, code, entry)

    @router.get("/v1/routing/{district}/{matter}", response_model=RoutingOut)
    async def get_routing(district: str, matter: str, caller: CallerDep) -> RoutingOut:
        doc = await storage.get_entry_doc(svc.db, district, matter)
        require_in_scope(caller, doc, f"routing entry for {matter} in {district}")
        return RoutingOut.model_validate(doc)

    @router.put("/v1/routing/{district}/{matter}", response_model=RoutingOut)
    async def put_routing(
        district: str, matter: str, body: RoutingIn, caller: CallerDep
    ) -> RoutingOut:
        """Change who handles a matter in a district (new work orders follow at once); the
        district's bureau or the city's."""
        caller.require(Permission.SUPERVISE)
        district_in_scope(caller, district)
        by = acting_person(caller, body.by)
        if workflow.matters.get(matter) is None:
            raise HTTPException(404, detail=f"unknown matter {matter}")
        try:
            entry = RoutingEntry(
                district=district,
                matter=matter,
                level=body.level,
                unit=body.unit,
                streets=body.streets,
            )
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        problems = validate_entry(workflow.city, entry)
        if problems:
            raise HTTPException(422, detail="; ".join(problems))

        async def work(uow: UnitOfWork) -> dict[str, Any]:
            return await storage.put_entry(uow, entry, by=by, at=uow.now())

        return RoutingOut.model_validate(await run_command(svc, work))

    return router
