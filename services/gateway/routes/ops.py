"""Operations: refused input (quarantine, unauthenticated refusal counts), dead letters and
their replay, every service's health, consumer lag and the audit chain's verification."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from services.gateway import ops, reads, storage
from services.gateway.deps import (
    AuditCaller,
    GatewayDep,
    OpsCaller,
    QuarantineCaller,
    ReplayCaller,
)
from services.gateway.domain.audit import ChainReport
from services.gateway.schemas import DocumentPage, StoredDocument, stored_document
from services.gateway.storage import DEAD_LETTERS
from shared.api import Conflict, NotFound, limit_param, offset_param
from shared.consumer import QUARANTINE

router = APIRouter(tags=["operations"])
LAG_TIMEOUT_S = 15


@router.get("/v1/quarantine", response_model=DocumentPage)
async def quarantined(
    gw: GatewayDep,
    caller: QuarantineCaller,
    source: Literal["http", "kafka"] | None = None,
    code: str | None = Query(default=None, max_length=64),
    event_id: str | None = Query(default=None, max_length=200),
    key_id: str | None = Query(default=None, max_length=64, description="ingest API key"),
    subject_id: str | None = Query(
        default=None, max_length=200, description="the event's partitionkey (entity id)"
    ),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> DocumentPage:
    """Refused input with the reason and the raw body.

    Unauthenticated refusals are only sampled here (see ``/v1/ingest/refusals``).
    """
    filters = {
        "source": source,
        "code": code,
        "event_id": event_id,
        "key_id": key_id,
        "subject_id": subject_id,
    }
    return await reads.loose_page(gw, QUARANTINE, caller, filters, limit, offset)


@router.get("/v1/ingest/refusals")
async def refusals(
    gw: GatewayDep,
    caller: QuarantineCaller,
    hours: int = Query(default=24, ge=1, le=24 * 31, description="how far back"),
) -> dict[str, Any]:
    """Unauthenticated ingest refusals counted per hour and code (only a sample is kept)."""
    since = gw.clock.now() - timedelta(hours=hours)
    rows = await storage.refusal_counts(gw.db, since)
    items = [{k: v for k, v in r.items() if k != "_id"} for r in rows]
    return {"items": items, "total": sum(int(r.get("count", 0)) for r in rows)}


@router.get("/v1/dead-letters", response_model=DocumentPage)
async def dead_letters(
    gw: GatewayDep,
    caller: OpsCaller,
    topic: str | None = Query(default=None, max_length=300),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> DocumentPage:
    """Records that failed every retry, per ``.dlt`` topic."""
    return await reads.loose_page(
        gw, DEAD_LETTERS, caller, {"original_topic": topic}, limit, offset
    )


@router.post("/v1/dead-letters/{letter_id}/replay", response_model=StoredDocument)
async def replay(letter_id: str, gw: GatewayDep, caller: ReplayCaller) -> StoredDocument:
    """Republish the original record to its ``x-original-topic`` (consumers dedupe by id)."""
    try:
        return stored_document(await ops.replay(gw, caller, letter_id))
    except NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except Conflict as exc:
        raise HTTPException(409, detail=str(exc)) from exc


@router.get("/v1/health")
async def health(gw: GatewayDep, caller: OpsCaller) -> dict[str, Any]:
    """Readiness of every service (``JIANDU_PEERS``) and of this gateway."""
    peers = await ops.peer_health(gw.settings)
    return {"self": await gw.readiness(), "services": peers, "ok": all(p["ok"] for p in peers)}


@router.get("/v1/lag")
async def lag(gw: GatewayDep, caller: OpsCaller) -> dict[str, Any]:
    """Consumer lag per group and topic (end offset minus committed offset)."""
    try:
        groups = await asyncio.wait_for(ops.consumer_lag(gw.settings), LAG_TIMEOUT_S)
    except Exception as exc:
        raise HTTPException(503, detail=f"Kafka admin unavailable: {exc!r}") from exc
    return {"groups": groups, "total": sum(g["lag"] for g in groups)}


@router.get("/v1/audit/verify", response_model=ChainReport)
async def verify_audit(gw: GatewayDep, caller: AuditCaller) -> ChainReport:
    """Re-hash the audit chain; the first altered or missing record is reported."""
    report = await gw.audit.verify()
    await gw.record_by(caller, "verify", "audit")
    return report
