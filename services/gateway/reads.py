"""The read API's application side: presenting entities by role, auditing personal-data
reads, CSV exports and the overview's totals. Queries are in ``queries``; routes in
``routes/read.py``.
"""

from __future__ import annotations

from typing import Any

from services.gateway import queries
from services.gateway.context import GatewayService
from services.gateway.domain.access import has_personal_data, mask_personal_data
from services.gateway.domain.export import EXPORT_COLUMNS, to_csv
from services.gateway.schemas import (
    DistrictKpis,
    DocumentPage,
    EntityOut,
    Overview,
    TimelineOut,
    stored_document,
)
from services.gateway.settings import GatewaySettings
from shared.identity import Caller
from shared.mongo import Document


def trace_url(settings: GatewaySettings, trace_id: str | None) -> str | None:
    return f"{settings.jaeger_url.rstrip('/')}/trace/{trace_id}" if trace_id else None


def present(settings: GatewaySettings, doc: Document, caller: Caller) -> EntityOut:
    """An entity's read model; its snapshot's personal data masked unless the role sees it."""
    snapshot = doc.get("snapshot") or {}
    if not caller.pii:
        snapshot = mask_personal_data(snapshot)
    fields = {k: v for k, v in doc.items() if k not in ("_id", "snapshot", "first_at")}
    return EntityOut(
        **fields,
        id=str(doc["_id"]),
        snapshot=snapshot,
        trace_url=trace_url(settings, doc.get("trace_id")),
    )


def timeline_entry(settings: GatewaySettings, entry: Document) -> TimelineOut:
    return TimelineOut(
        **{k: v for k, v in entry.items() if k != "_id"},
        id=str(entry["_id"]),
        trace_url=trace_url(settings, entry.get("trace_id")),
    )


def feed_item(settings: GatewaySettings, entry: Document) -> dict[str, Any]:
    """A timeline entry as the live feed sends it (without the change itself)."""
    item = {k: v for k, v in entry.items() if k not in ("_id", "change")}
    item["id"] = str(entry["_id"])
    item["trace_url"] = trace_url(settings, entry.get("trace_id"))
    return item


async def audit_read(
    gw: GatewayService, caller: Caller, resource: str, docs: list[Document], action: str = "read"
) -> None:
    """Chain a record of the documents read that hold personal data (masked or not)."""
    with_pii = [d for d in docs if has_personal_data(d.get("snapshot") or {})]
    if not with_pii:
        return
    unmasked = caller.pii
    await gw.record_by(
        caller,
        action,
        resource,
        [str(d["_id"]) for d in with_pii],
        district=caller.principal.district,
        personal_data=unmasked,
        details={"masked": not unmasked, "count": len(with_pii)},
    )


async def export_csv(gw: GatewayService, caller: Caller, entity: str) -> str:
    """The caller's rows of one entity as CSV (no personal data); an export is audited."""
    columns = EXPORT_COLUMNS[entity]
    docs = await queries.export_docs(gw.db, entity, caller.scope, gw.settings.export_max_rows)
    if docs:  # data left the system: who, what, how many rows
        await gw.record_by(
            caller,
            "export",
            entity,
            None,
            district=caller.principal.district,
            personal_data=False,
            details={"rows": len(docs), "columns": [c.header for c in columns]},
        )
    return to_csv(columns, docs)


async def overview(gw: GatewayService, caller: Caller) -> Overview:
    """KPIs per district in the caller's scope, and their totals."""
    rows = await queries.overview(gw.db, caller.scope)
    totals: dict[str, Any] = {}
    for row in rows:
        for k, v in row.items():
            if isinstance(v, int) and not isinstance(v, bool):
                totals[k] = totals.get(k, 0) + v
    raised, disposed = totals.get("leads_raised", 0), totals.get("leads_disposed", 0)
    totals["disposal_rate"] = round(disposed / raised, 4) if raised else None
    return Overview(districts=[DistrictKpis(**r) for r in rows], totals=totals)


async def loose_page(
    gw: GatewayService,
    collection: str,
    caller: Caller,
    filters: dict[str, Any],
    limit: int,
    offset: int,
) -> DocumentPage:
    """One page of leads, quarantine or dead letters, stored fields as they are."""
    total, docs = await queries.list_page(
        gw.db, collection, caller.scope, filters, limit=limit, offset=offset
    )
    return DocumentPage(
        items=[stored_document(d) for d in docs], total=total, limit=limit, offset=offset
    )
