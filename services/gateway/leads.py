"""Lead disposal (线索处置), the application side: one transaction through the unit of work.

A supervisor records how a 监督线索 was handled; the lead is closed and the change announced
on ``supervision.leads`` (it counts towards 线索处置率). A lead out of the caller's scope
answers like a missing one.
"""

from __future__ import annotations

from typing import Any

from services.gateway import storage
from services.gateway.context import GatewayService
from services.gateway.domain.transfer import TRANSFER_OUTCOME, follow_up, transfer_request
from services.gateway.schemas import Disposition
from shared.api import Conflict, NotFound, run_command
from shared.contracts import LEAD_DISPOSED_TYPE
from shared.envelope import Envelope
from shared.identity import Caller
from shared.mongo import Document
from shared.topics import SUPERVISION_LEADS
from shared.unit_of_work import UnitOfWork


async def close(
    uow: UnitOfWork, caller: Caller, lead_id: str, disposition: Disposition
) -> Document:
    """Dispose of the lead in this unit of work and announce it; the lead as stored."""
    lead = await storage.lead_in_scope(uow, lead_id, caller.scope)
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    if lead.get("status") == "disposed":
        raise Conflict(f"lead {lead_id} is already disposed")
    change: dict[str, Any] = {
        "outcome": disposition.outcome,
        "note": disposition.note,
        "by": caller.principal.sub,
        "at": uow.now(),
    }
    if disposition.outcome == TRANSFER_OUTCOME:  # 移送纪检监察: a 移送函 through notify
        transfer = transfer_request(lead, disposition.note, caller.principal.sub)
        await uow.request_notice(transfer)
        change["follow_up"] = follow_up(transfer)
    lead.update(status="disposed", disposition=change)
    storage.save_lead(uow, lead)
    await uow.emit(
        Envelope(
            type=LEAD_DISPOSED_TYPE,
            source=uow.source,
            subject=f"lead/{lead_id}",
            district=lead["district"],
            partitionkey=lead_id,
            data={
                "lead": {**{k: v for k, v in lead.items() if k != "_id"}, "id": lead_id},
                "change": change,
            },
        ),
        SUPERVISION_LEADS,
    )
    return lead


async def dispose(
    gw: GatewayService, caller: Caller, lead_id: str, disposition: Disposition
) -> Document:
    """Dispose of one lead (404 out of scope or unknown, 409 already disposed), then audit."""
    lead = await run_command(gw, lambda uow: close(uow, caller, lead_id, disposition))
    await gw.record_by(
        caller,
        "dispose",
        "leads",
        [lead_id],
        district=lead.get("district"),
        details={"outcome": disposition.outcome},
    )
    return lead
