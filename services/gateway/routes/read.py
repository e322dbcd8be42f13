"""The scoped read API: complaints, cases, filings, notices, inspections and officers with
their timelines, the inspection summary and rates, the overview's KPIs, the anonymous open
data and the live feed (server-sent events).

Every query is the caller's data scope narrowed by the request's filters (``queries``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from services.gateway import queries, reads
from services.gateway.deps import (
    READ_PERMISSIONS,
    FeedCaller,
    GatewayDep,
    InspectionsCaller,
    OverviewCaller,
    holding,
)
from services.gateway.domain.access import Permission
from services.gateway.domain.export import OPEN_DATA_FIGURES
from services.gateway.schemas import (
    EntityDetail,
    EntityPage,
    InspectionRates,
    InspectionSummary,
    OpenData,
    Overview,
)
from shared.api import limit_param, offset_param
from shared.identity import Caller

router = APIRouter()

ENTITY_PATHS = ("complaints", "cases", "filings", "notices", "inspections", "officers")
"""Each is a collection too."""


def add_entity_routes(path: str, permission: Permission) -> None:
    """``GET /v1/{path}`` (a page in the caller's scope) and ``GET /v1/{path}/{item_id}``."""
    collection = path

    async def list_items(
        gw: GatewayDep,
        caller: Caller = Depends(holding(permission)),
        district: str | None = Query(default=None, pattern=r"^\d{6}$"),
        unit: str | None = Query(default=None, max_length=100),
        status: str | None = Query(default=None, max_length=64),
        flag: str | None = Query(default=None, max_length=64, description="e.g. overdue"),
        subject_id: str | None = Query(
            default=None, max_length=200, description="the work order or case it is about"
        ),
        event_id: str | None = Query(
            default=None, max_length=200, description="an ingested event about its subject"
        ),
        key_id: str | None = Query(
            default=None, max_length=64, description="the API key that sent such an event"
        ),
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> EntityPage:
        filters = {
            "subject_id": subject_id,
            "event_ids": event_id,
            "key_ids": key_id,
            "district": district,
            "unit": unit,
            "status": status,
            "flags": flag,
        }
        total, docs = await queries.list_page(
            gw.db, collection, caller.scope, filters, limit=limit, offset=offset
        )
        await reads.audit_read(gw, caller, collection, docs, "list")
        items = [reads.present(gw.settings, d, caller) for d in docs]
        return EntityPage(items=items, total=total, limit=limit, offset=offset)

    async def one_item(
        item_id: str, gw: GatewayDep, caller: Caller = Depends(holding(permission))
    ) -> EntityDetail:
        doc = await queries.entity(gw.db, collection, caller.scope, item_id)
        if doc is None:
            raise HTTPException(404, detail=f"{path.rstrip('s')} {item_id} not found")
        await reads.audit_read(gw, caller, collection, [doc])
        events = await queries.timeline_of(gw.db, doc["entity"], item_id)
        return EntityDetail(
            item=reads.present(gw.settings, doc, caller),
            timeline=[reads.timeline_entry(gw.settings, e) for e in events],
        )

    router.add_api_route(
        f"/v1/{path}",
        list_items,
        methods=["GET"],
        tags=["read"],
        response_model=EntityPage,
        summary=f"List {path} in the caller's scope",
    )
    router.add_api_route(
        f"/v1/{path}/{{item_id}}",
        one_item,
        methods=["GET"],
        tags=["read"],
        response_model=EntityDetail,
        summary=f"One of {path} with its event timeline",
    )


for entity_path in ENTITY_PATHS:
    add_entity_routes(entity_path, READ_PERMISSIONS[entity_path])


@router.get("/v1/open-data/monthly", tags=["open data"], response_model=OpenData)
async def open_data(gw: GatewayDep) -> OpenData:
    """Anonymous: aggregate figures per district and month (counts only, no personal
    data, no ids); each entity counts in the month it first appeared."""
    return OpenData(figures=list(OPEN_DATA_FIGURES), rows=await queries.open_data(gw.db))


@router.get("/v1/overview", tags=["read"], response_model=Overview)
async def overview(gw: GatewayDep, caller: OverviewCaller) -> Overview:
    """KPIs per district within the caller's scope (线索处置率, overdue, bounces, grades...)."""
    return await reads.overview(gw, caller)


@router.get("/v1/inspection-summary", tags=["read"], response_model=InspectionSummary)
async def inspection_summary(
    gw: GatewayDep,
    caller: InspectionsCaller,
    days: int = Query(default=90, ge=1, le=366, description="the window: the last N days"),
    top: int = Query(default=10, ge=1, le=50, description="enterprises listed per district"),
) -> InspectionSummary:
    """涉企行政检查 per district in the caller's scope: inspections in the window, 亮码率,
    未备案 and 无证执法 counts, and the most inspected enterprises (综合查一次 counts once)."""
    since = datetime.now(UTC) - timedelta(days=days)
    rows = await queries.inspection_summary(gw.db, caller.scope, since, top)
    return InspectionSummary.model_validate({"since": since, "items": rows})


@router.get("/v1/inspection-rates", tags=["read"], response_model=InspectionRates)
async def inspection_rates(gw: GatewayDep, caller: InspectionsCaller) -> InspectionRates:
    """持证率 and 被纠错率 per district and unit in the caller's scope (a unit sees its own)."""
    rows = await queries.inspection_rates(gw.db, caller.scope)
    return InspectionRates.model_validate({"items": rows})


FEED_RETRY_MS = 3000
"""How long an ``EventSource`` waits before it reconnects."""


@router.get("/v1/stream", tags=["read"], response_class=EventSourceResponse)
async def stream(
    request: Request,
    gw: GatewayDep,
    caller: FeedCaller,
    max_events: int | None = Query(default=None, ge=1, le=10_000, description="close after N"),
) -> AsyncIterator[ServerSentEvent]:
    """Live event feed (SSE) of every entity event in the caller's scope.

    The recent backlog first, then each new timeline entry in feed order (``seq``); FastAPI
    sends a keep-alive comment when the feed is idle."""
    cfg = gw.settings
    pending = await queries.feed_backlog(gw.db, caller.scope, cfg.stream_backlog)
    last = max((d["seq"] for d in pending), default=0)
    yield ServerSentEvent(retry=FEED_RETRY_MS)
    sent = 0
    while True:
        for doc in pending:
            item = reads.feed_item(cfg, doc)
            data = json.dumps(item, default=str, ensure_ascii=False)
            yield ServerSentEvent(id=str(doc["seq"]), event="entity", raw_data=data)
            sent += 1
            if max_events is not None and sent >= max_events:
                return
        if await request.is_disconnected():
            return
        await asyncio.sleep(cfg.stream_poll_s)
        pending = await queries.feed_after(gw.db, caller.scope, last)
        if pending:
            last = pending[-1]["seq"]
