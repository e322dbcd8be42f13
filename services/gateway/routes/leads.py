"""监督线索: the leads in the caller's scope, and their disposal (处置)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from services.gateway import leads as lead_disposal
from services.gateway import reads
from services.gateway.deps import DisposeCaller, GatewayDep, LeadsCaller
from services.gateway.schemas import Disposition, DocumentPage, StoredDocument, stored_document
from services.gateway.storage import LEADS
from shared.api import limit_param, offset_param

router = APIRouter(tags=["read"])


@router.get("/v1/leads", response_model=DocumentPage)
async def leads(
    gw: GatewayDep,
    caller: LeadsCaller,
    district: str | None = Query(default=None, pattern=r"^\d{6}$"),
    kind: str | None = Query(default=None, max_length=64),
    status: Literal["open", "disposed"] | None = None,
    event_id: str | None = Query(
        default=None, max_length=200, description="an ingested event about the lead's subject"
    ),
    key_id: str | None = Query(
        default=None, max_length=64, description="the API key that sent such an event"
    ),
    subject_id: str | None = Query(
        default=None, max_length=200, description="the complaint, case or filing id"
    ),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> DocumentPage:
    """监督线索 in the caller's scope."""
    filters = {
        "district": district,
        "kind": kind,
        "status": status,
        "event_ids": event_id,
        "key_ids": key_id,
        "subject_id": subject_id,
    }
    return await reads.loose_page(gw, LEADS, caller, filters, limit, offset)


@router.post("/v1/leads/{lead_id}/dispose", response_model=StoredDocument)
async def dispose(
    lead_id: str, disposition: Disposition, gw: GatewayDep, caller: DisposeCaller
) -> StoredDocument:
    """Record how a lead was handled (处置); counts towards 线索处置率."""
    return stored_document(await lead_disposal.dispose(gw, caller, lead_id, disposition))
