"""The hotline's read side for the API: complaints and routing entries within the caller's
scope (another district's or unit's answers 404, like a missing one), and where a work order
would be routed now.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.hotline import storage
from services.hotline.domain.lifecycle import Complaint, Status
from services.hotline.domain.routing import Level, Route, route
from services.hotline.handlers import HotlineWorkflow
from shared.identity import Caller, Permission, require_in_scope, within
from shared.mongo import Document

Db = storage.Db
LIST_PROJECTION = {"timeline": 0, "applied_updates": 0}
"""A list row carries neither the timeline nor the platform's update fingerprints."""


def given(**values: Any) -> dict[str, Any]:
    """The filters the caller set (an unset query parameter filters nothing)."""
    return {name: value for name, value in values.items() if value is not None}


def visible(caller: Caller, complaint: Complaint | None, order_id: str) -> Complaint:
    """The complaint when the caller may read it; 404 when missing or out of scope."""
    caller.require(Permission.READ_COMPLAINTS)
    doc = {"district": complaint.district, "unit": complaint.unit} if complaint else None
    require_in_scope(caller, doc, f"complaint {order_id}")
    assert complaint is not None
    return complaint


async def complaint(db: Db, caller: Caller, order_id: str) -> Complaint:
    """One complaint with its timeline, in the caller's scope."""
    return visible(caller, await storage.read_complaint(db, order_id), order_id)


async def complaint_page(
    db: Db,
    caller: Caller,
    *,
    district: str | None,
    unit: str | None,
    status: Status | None,
    overdue: bool | None,
    matter: str | None,
    received_from: dt.datetime | None,
    received_to: dt.datetime | None,
    limit: int,
    offset: int,
) -> tuple[int, list[Document]]:
    """Complaints, newest first, in the caller's scope, by the filters given."""
    caller.require(Permission.READ_COMPLAINTS)
    query = given(district=district, unit=unit, status=status, overdue=overdue, matter=matter)
    if received_from or received_to:
        query["received_at"] = given(**{"$gte": received_from, "$lt": received_to})
    scoped = within(caller.scope, query)
    return await storage.page(db, scoped, limit=limit, offset=offset, projection=LIST_PROJECTION)


async def routing_page(
    db: Db,
    caller: Caller,
    *,
    district: str | None,
    matter: str | None,
    level: Level | None,
    limit: int,
    offset: int,
) -> tuple[int, list[Document]]:
    """Routing catalogue entries in the caller's scope, by district and matter."""
    query = within(caller.scope, given(district=district, matter=matter, level=level))
    return await storage.list_entries(db, query, limit=limit, offset=offset)


async def routing_entry(db: Db, caller: Caller, district: str, matter: str) -> Document:
    """One routing catalogue entry, in the caller's scope."""
    doc = await storage.get_entry_doc(db, district, matter)
    return require_in_scope(caller, doc, f"routing entry for {matter} in {district}")


async def preview(
    db: Db, workflow: HotlineWorkflow, district: str, matter: str | None, street: str | None
) -> Route:
    """Where a work order with this district, street and matter would go now."""
    known = workflow.matters.get(matter)
    code = known.code if known else None
    entry = await storage.read_entry(db, district, code) if code else None
    return route(workflow.city, district, street, code, entry)
