"""The hotline service's collections, indexes and queries (its own database only).

- ``complaints``: one document per 12345 work order (``_id`` = order_id) with its timeline.
- ``routing``: the routing catalogue, one entry per district and matter (``_id`` =
  ``<district>:<matter>``), seeded from ``data/routing.json`` and editable over the API.
- ``cases``: enforcement cases seen on the case system's topic (``_id`` = case_id), with the
  keys of their party, for the 应立尽立 check.
- ``hotspots``: per district, matter and place, the recent complaints there and the 高频投诉
  leads raised (read by id: one document per place instead of a query over complaints);
  per district, matter and street, the recent originals a duplicate report is linked to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.hotline.domain.duplicates import StreetCandidates
from services.hotline.domain.leads import PlaceActivity
from services.hotline.domain.lifecycle import Complaint
from services.hotline.domain.routing import RoutingEntry
from shared.mongo import Document, get_document, list_indexes, update_by_id
from shared.mongo import page as shared_page
from shared.unit_of_work import AggregateRepository, Lookup, UnitOfWork

COMPLAINTS = "complaints"
ROUTING = "routing"
CASES = "cases"
HOTSPOTS = "hotspots"

Db = AsyncDatabase[Document]

# List orders; each is the key of an index below, so a page never sorts in memory.
NEWEST_FIRST = [("received_at", DESCENDING), ("_id", ASCENDING)]
BY_DISTRICT_MATTER = [("district", ASCENDING), ("matter", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    COMPLAINTS: [
        *list_indexes(NEWEST_FIRST, ["matter"]),
        IndexModel([("district", ASCENDING), ("received_at", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("status", ASCENDING)], name="by_unit"),
        IndexModel([("status", ASCENDING), ("received_at", DESCENDING)], name="by_status"),
        IndexModel([("overdue", ASCENDING), ("district", ASCENDING)], name="by_overdue"),
        IndexModel([("target_keys", ASCENDING)], name="by_target"),
    ],
    ROUTING: [
        IndexModel([("matter", ASCENDING), ("district", ASCENDING)], name="by_matter"),
        *list_indexes(BY_DISTRICT_MATTER, ["level", "unit"]),  # unit: a unit officer's scope
    ],
    CASES: [
        IndexModel([("target_keys", ASCENDING)], name="by_target"),
        IndexModel([("source_order_id", ASCENDING)], name="by_order"),
    ],
    HOTSPOTS: [],
}


# ------------------------------------------------------------------ complaints


def to_doc(c: Complaint) -> Document:
    body = c.model_dump(exclude={"id"})
    return {"_id": c.id, **body}


def from_doc(doc: Mapping[str, Any]) -> Complaint:
    return Complaint.model_validate({"id": doc["_id"], **doc})


async def read_complaint(db: Db, order_id: str) -> Complaint | None:
    """One complaint for the read side (handlers go through :func:`complaints`)."""
    doc = await get_document(db, COMPLAINTS, order_id)
    return from_doc(doc) if doc else None


def complaints(uow: UnitOfWork) -> AggregateRepository[Complaint]:
    """Complaints by order id, through the unit of work's identity map."""
    return AggregateRepository(uow.documents(COMPLAINTS), to_doc, from_doc)


COMPLAINTS_BY_TARGET = Lookup(COMPLAINTS, "target_keys")
"""Complaints by the party they name (a case's party finds them; prefetched per batch)."""


async def complaints_for_case(
    uow: UnitOfWork, *, source_order_id: str | None, keys: Sequence[str]
) -> list[Complaint]:
    """Complaints awaiting a case that this case may answer (by order id or party).

    Served by the batch's prefetch (:data:`COMPLAINTS_BY_TARGET`, complaints by id) as the
    unit sees them: no query per case event.
    """
    found: dict[str, Document] = {}
    for key in keys:
        for doc in await uow.lookup(COMPLAINTS_BY_TARGET).find(key):
            found[doc["_id"]] = doc
    if source_order_id:
        source = await uow.documents(COMPLAINTS).get(source_order_id)
        if source is not None:
            found[source["_id"]] = source
    return [from_doc(d) for d in found.values() if d.get("verdict") == "violation_confirmed"]


async def page(
    db: Db,
    query: Mapping[str, Any],
    *,
    limit: int,
    offset: int,
    projection: Mapping[str, Any] | None = None,
) -> tuple[int, list[Document]]:
    return await shared_page(
        db, COMPLAINTS, query, sort=NEWEST_FIRST, limit=limit, offset=offset, projection=projection
    )


# ------------------------------------------------------------------ routing catalogue


async def seed_routing(db: Db, entries: Sequence[RoutingEntry], version: str) -> int:
    """Insert the packaged entries that are not there yet (never overwrite an edit)."""
    if not entries:
        return 0
    ops = [
        UpdateOne(
            {"_id": e.key},
            {"$setOnInsert": {**e.model_dump(), "version": 1, "source": f"seed:{version}"}},
            upsert=True,
        )
        for e in entries
    ]
    result = await db[ROUTING].bulk_write(ops, ordered=False)
    return result.upserted_count


def entry_id(district: str, matter: str) -> str:
    return f"{district}:{matter}"


async def get_entry(uow: UnitOfWork, district: str, matter: str) -> RoutingEntry | None:
    doc = await uow.documents(ROUTING).get(entry_id(district, matter))
    return RoutingEntry.model_validate(doc) if doc else None


async def read_entry(db: Db, district: str, matter: str) -> RoutingEntry | None:
    doc = await get_document(db, ROUTING, entry_id(district, matter))
    return RoutingEntry.model_validate(doc) if doc else None


async def get_entry_doc(db: Db, district: str, matter: str) -> Document | None:
    return await db[ROUTING].find_one({"_id": f"{district}:{matter}"})


async def list_entries(
    db: Db, query: Mapping[str, Any], *, limit: int, offset: int
) -> tuple[int, list[Document]]:
    return await shared_page(
        db, ROUTING, query, sort=BY_DISTRICT_MATTER, limit=limit, offset=offset
    )


async def put_entry(uow: UnitOfWork, entry: RoutingEntry, *, by: str, at: dt.datetime) -> Document:
    """Replace one entry, bumping its version and keeping who changed it."""
    coll = await uow.collection(ROUTING)
    doc = await update_by_id(
        coll,
        {"_id": entry.key},
        {
            "$set": {**entry.model_dump(), "updated_by": by, "updated_at": at, "source": "api"},
            "$inc": {"version": 1},
        },
        upsert=True,
        session=uow.session,
    )
    assert doc is not None
    return doc


# ------------------------------------------------------------------ cases and hotspots


async def record_case(uow: UnitOfWork, case: Document) -> bool:
    """Keep a case once; False when it was already known."""
    cases = uow.documents(CASES)
    if await cases.get(case["_id"]) is not None:
        return False
    cases.add(case)
    return True


CASES_BY_ORDER = Lookup(CASES, "source_order_id")
"""Cases by the work order they came from (the 应立尽立 check; prefetched per batch of timers)."""
CASES_BY_TARGET = Lookup(CASES, "target_keys")
"""Cases by the party they name (the same check)."""


async def case_times_for(
    uow: UnitOfWork, *, order_id: str, keys: Sequence[str]
) -> list[dt.datetime]:
    """When each case about this complaint's order or target was opened (or reached us).

    Two look-ups by field that a batch of case-check timers prefetches with one ``$in`` each
    (one per timer, as raw queries, took up to twenty ``find`` commands in a 200-record batch
    once these timers fired in the batch that scheduled them); they also see the cases this
    unit recorded. Not one ``$or``: SecantusDB scans the whole collection for one.
    """
    found: dict[Any, dt.datetime] = {}
    for doc in await uow.lookup(CASES_BY_ORDER).find(order_id):
        found[doc["_id"]] = doc["opened_at"]
    for key in keys:
        for doc in await uow.lookup(CASES_BY_TARGET).find(key):
            found[doc["_id"]] = doc["opened_at"]
    return list(found.values())


def place_activity(uow: UnitOfWork) -> AggregateRepository[PlaceActivity]:
    """高频投诉 state per district, matter and place (``_id`` = ``district:matter:place``)."""
    return AggregateRepository(
        uow.documents(HOTSPOTS),
        lambda a: {"_id": a.id, **a.model_dump(exclude={"id"})},
        lambda d: PlaceActivity.model_validate({"id": d["_id"], **d}),
    )


def street_candidates(uow: UnitOfWork) -> AggregateRepository[StreetCandidates]:
    """重复件 candidates per district, matter and street (``district:matter:street:…``)."""
    return AggregateRepository(
        uow.documents(HOTSPOTS),
        lambda a: {"_id": a.id, **a.model_dump(exclude={"id"})},
        lambda d: StreetCandidates.model_validate({"id": d["_id"], **d}),
    )
