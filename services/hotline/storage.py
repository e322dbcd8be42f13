"""The hotline service's collections, indexes and queries (its own database only).

- ``complaints``: one document per 12345 work order (``_id`` = order_id) with its timeline.
- ``routing``: the routing catalogue, one entry per district and matter (``_id`` =
  ``<district>:<matter>``), seeded from ``data/routing.json`` and editable over the API.
- ``cases``: enforcement cases seen on the case system's topic (``_id`` = case_id), with the
  keys of their party, for the 应立尽立 check.
- ``hotspots``: per matter and place, how many 高频投诉 leads were raised and when last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.hotline.domain.lifecycle import Complaint
from services.hotline.domain.routing import RoutingEntry
from shared.mongo import Document, list_indexes
from shared.mongo import page as shared_page

COMPLAINTS = "complaints"
ROUTING = "routing"
CASES = "cases"
HOTSPOTS = "hotspots"

Db = AsyncDatabase[Document]
Session = AsyncClientSession | None

# List orders; each is the key of an index below, so a page never sorts in memory.
NEWEST_FIRST = [("received_at", DESCENDING), ("_id", ASCENDING)]
BY_DISTRICT_MATTER = [("district", ASCENDING), ("matter", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    COMPLAINTS: [
        *list_indexes(NEWEST_FIRST),
        IndexModel([("district", ASCENDING), ("received_at", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("status", ASCENDING)], name="by_unit"),
        IndexModel([("status", ASCENDING), ("received_at", DESCENDING)], name="by_status"),
        IndexModel([("overdue", ASCENDING), ("district", ASCENDING)], name="by_overdue"),
        IndexModel(
            [("matter", ASCENDING), ("place_keys", ASCENDING), ("received_at", ASCENDING)],
            name="hotspot",
        ),
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


async def get_complaint(db: Db, session: Session, order_id: str) -> Complaint | None:
    doc = await db[COMPLAINTS].find_one({"_id": order_id}, session=session)
    return from_doc(doc) if doc else None


async def put_complaint(db: Db, session: Session, c: Complaint) -> None:
    """Write the whole document (the handler holds the latest version in the transaction)."""
    await db[COMPLAINTS].replace_one({"_id": c.id}, to_doc(c), upsert=True, session=session)


async def count_same_place(
    db: Db,
    session: Session,
    *,
    matter: str,
    place_key: str,
    since: dt.datetime,
    until: dt.datetime,
) -> list[str]:
    """Ids of complaints of ``matter`` at ``place_key`` received in [since, until]."""
    cursor = db[COMPLAINTS].find(
        {"matter": matter, "place_keys": place_key, "received_at": {"$gte": since, "$lte": until}},
        {"_id": 1},
        session=session,
    )
    return sorted(str(d["_id"]) for d in await cursor.to_list())


async def complaints_for_case(
    db: Db, session: Session, *, source_order_id: str | None, keys: Sequence[str]
) -> list[Complaint]:
    """Complaints awaiting a case that this case may answer (by order id or party)."""
    ors: list[dict[str, Any]] = []
    if source_order_id:
        ors.append({"_id": source_order_id})
    if keys:
        ors.append({"target_keys": {"$in": list(keys)}})
    if not ors:
        return []
    cursor = db[COMPLAINTS].find({"$or": ors, "verdict": "violation_confirmed"}, session=session)
    return [from_doc(d) for d in await cursor.to_list()]


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


async def get_entry(db: Db, session: Session, district: str, matter: str) -> RoutingEntry | None:
    doc = await db[ROUTING].find_one({"_id": f"{district}:{matter}"}, session=session)
    return RoutingEntry.model_validate(doc) if doc else None


async def get_entry_doc(db: Db, district: str, matter: str) -> Document | None:
    return await db[ROUTING].find_one({"_id": f"{district}:{matter}"})


async def list_entries(
    db: Db, query: Mapping[str, Any], *, limit: int, offset: int
) -> tuple[int, list[Document]]:
    return await shared_page(
        db, ROUTING, query, sort=BY_DISTRICT_MATTER, limit=limit, offset=offset
    )


async def put_entry(
    db: Db, session: Session, entry: RoutingEntry, *, by: str, at: dt.datetime
) -> Document:
    """Replace one entry, bumping its version and keeping who changed it."""
    doc = await db[ROUTING].find_one_and_update(
        {"_id": entry.key},
        {
            "$set": {**entry.model_dump(), "updated_by": by, "updated_at": at, "source": "api"},
            "$inc": {"version": 1},
        },
        upsert=True,
        return_document=True,
        session=session,
    )
    assert doc is not None
    return doc


# ------------------------------------------------------------------ cases and hotspots


async def record_case(db: Db, session: Session, case: Document) -> bool:
    """Keep a case once; False when it was already known."""
    result = await db[CASES].update_one(
        {"_id": case["_id"]}, {"$setOnInsert": case}, upsert=True, session=session
    )
    return result.upserted_id is not None


async def case_times_for(
    db: Db, session: Session, *, order_id: str, keys: Sequence[str]
) -> list[dt.datetime]:
    """When each case about this complaint's order or target was opened (or reached us)."""
    ors: list[dict[str, Any]] = [{"source_order_id": order_id}]
    if keys:
        ors.append({"target_keys": {"$in": list(keys)}})
    cursor = db[CASES].find({"$or": ors}, {"opened_at": 1}, session=session)
    return [d["opened_at"] for d in await cursor.to_list()]


async def get_hotspot(db: Db, session: Session, key: str) -> Document | None:
    return await db[HOTSPOTS].find_one({"_id": key}, session=session)


async def put_hotspot(db: Db, session: Session, doc: Document) -> None:
    await db[HOTSPOTS].replace_one({"_id": doc["_id"]}, doc, upsert=True, session=session)
