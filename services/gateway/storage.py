"""The gateway's collections, indexes and queries (its own database; no other service's).

Read models: ``complaints``, ``cases``, ``filings``, ``notices`` (latest snapshot per entity),
``timeline`` (every entity event with its trace id), ``leads`` (监督线索 with disposal),
``dead_letters`` (raw DLT records), ``quarantine`` (shared with the runtime: refused input).
Access: ``users``, ``api_keys``, ``accepted`` (ingest idempotency), ``audit`` (hash chain).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.gateway.domain import audit as audit_chain
from services.gateway.domain.projections import (
    ANOMALY_LEAD_KINDS,
    BOUNCE_LEAD_KINDS,
    ENTITIES,
    disposal_rate,
)
from shared.city import load_city
from shared.consumer import QUARANTINE
from shared.mongo import Document, list_indexes

USERS = "users"
API_KEYS = "api_keys"
ACCEPTED = "accepted"
AUDIT = "audit"
TIMELINE = "timeline"
LEADS = "leads"
DEAD_LETTERS = "dead_letters"

Db = AsyncDatabase[Document]


# The order of each paged list; ``list_indexes`` builds the indexes that serve it.
ENTITY_ORDER = [("event_time", DESCENDING), ("_id", ASCENDING)]
LEADS_ORDER = [("raised_at", DESCENDING), ("_id", ASCENDING)]
RECENT_FIRST = [("at", DESCENDING), ("_id", ASCENDING)]  # dead letters, quarantine
# Fields the overview tallies filter on, besides the list filters.
TALLIED = ["overdue", "returns", "grade", "late", "missing", "top_tier"]


def _entity_indexes() -> list[IndexModel]:
    return [
        *list_indexes(ENTITY_ORDER, ["status", "flags", *TALLIED]),
        IndexModel([("district", ASCENDING), ("event_time", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("event_time", DESCENDING)], name="by_unit"),
        IndexModel([("event_time", DESCENDING)], name="recent"),
    ]


INDEXES: dict[str, list[IndexModel]] = {
    **{kind.collection: _entity_indexes() for kind in ENTITIES},
    TIMELINE: [
        IndexModel([("entity", ASCENDING), ("entity_id", ASCENDING), ("time", ASCENDING)]),
        IndexModel([("seq", DESCENDING)], name="feed"),
        IndexModel([("district", ASCENDING), ("seq", DESCENDING)], name="feed_district"),
        IndexModel([("unit", ASCENDING), ("seq", DESCENDING)], name="feed_unit"),
    ],
    LEADS: [
        *list_indexes(LEADS_ORDER, ["kind", "status"]),
        IndexModel([("district", ASCENDING), ("raised_at", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("raised_at", DESCENDING)], name="by_unit"),
    ],
    DEAD_LETTERS: [
        IndexModel([("at", DESCENDING)], name="recent"),
        *list_indexes(RECENT_FIRST, ["original_topic"]),
    ],
    QUARANTINE: [
        IndexModel([("district", ASCENDING), ("at", DESCENDING)], name="by_district"),
        *list_indexes(RECENT_FIRST, ["source", "code"]),
    ],
}

COUNTERS = "counters"
FEED_COUNTER = "timeline"


async def next_seq(db: Db, session: AsyncClientSession | None) -> int:
    """Feed order (``timeline.seq``): a counter incremented inside the handler's transaction.

    The increment holds the counter until the transaction commits or aborts, so a second
    transaction cannot take the next number before the first one is done (it hits a write
    conflict and runs again after): numbers become visible in commit order and a reader that
    has seen ``seq = n`` has seen every committed entry below ``n``. The feed's ``seq > last``
    cursor therefore never skips an entry, whatever the replicas' clocks say.
    """
    doc = await db[COUNTERS].find_one_and_update(
        {"_id": FEED_COUNTER},
        {"$inc": {"seq": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert doc is not None  # upserted
    return int(doc["seq"])


async def init_seq(db: Db) -> None:
    """Start the counter above any ``seq`` already stored (data written before the counter
    existed used nanosecond clock readings)."""
    top = await db[TIMELINE].find_one({}, {"seq": 1}, sort=[("seq", DESCENDING)])
    highest = int(top["seq"]) if top and isinstance(top.get("seq"), int) else 0
    await db[COUNTERS].update_one({"_id": FEED_COUNTER}, {"$max": {"seq": highest}}, upsert=True)


# ------------------------------------------------------------------ users and keys


async def insert_user(db: Db, user: Document) -> None:
    await db[USERS].insert_one(user)


async def find_user(db: Db, username: str) -> Document | None:
    return await db[USERS].find_one({"_id": username})


async def insert_api_key(db: Db, record: Document) -> None:
    await db[API_KEYS].insert_one(record)


async def find_api_key(db: Db, key_id: str) -> Document | None:
    return await db[API_KEYS].find_one({"_id": key_id, "revoked": {"$ne": True}})


# ------------------------------------------------------------------ ingest


async def known_event_ids(db: Db, ids: list[str]) -> set[str]:
    docs = await db[ACCEPTED].find({"_id": {"$in": ids}}, {"_id": 1}).to_list()
    return {d["_id"] for d in docs}


async def mark_accepted(
    db: Db, session: AsyncClientSession | None, records: list[Document]
) -> None:
    if records:
        await db[ACCEPTED].insert_many(records, session=session)


async def quarantine(db: Db, session: AsyncClientSession | None, doc: Document) -> None:
    await db[QUARANTINE].insert_one(doc, session=session)


async def upsert_quarantine(db: Db, session: AsyncClientSession | None, doc: Document) -> None:
    """A record announced on ``ingest.quarantine`` (kept once, whoever announced it)."""
    await db[QUARANTINE].update_one(
        {"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True, session=session
    )


# ------------------------------------------------------------------ audit


class AuditLog:
    """Appends to the hash chain; ``seq`` is the ``_id`` so two writers cannot fork it."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self._lock = asyncio.Lock()

    async def append(self, *, at: datetime, **fields: Any) -> Document:
        async with self._lock:
            for _ in range(50):
                prev = await self.db[AUDIT].find_one(sort=[("_id", DESCENDING)])
                record = audit_chain.chain(prev, at=at, **fields)
                try:
                    await self.db[AUDIT].insert_one({"_id": record["seq"], **record})
                    return record
                except DuplicateKeyError:  # another replica appended first: chain after it
                    continue
        raise RuntimeError("audit log contended: could not append")

    async def append_in(
        self, session: AsyncClientSession | None, *, at: datetime, **fields: Any
    ) -> Document:
        """Append inside the caller's transaction (an audit event from another service: the
        inbox and the record commit together, so a redelivered event is chained once). A
        concurrent append makes the transaction fail and the consumer runs it again."""
        prev = await self.db[AUDIT].find_one(sort=[("_id", DESCENDING)], session=session)
        record = audit_chain.chain(prev, at=at, **fields)
        await self.db[AUDIT].insert_one({"_id": record["seq"], **record}, session=session)
        return record

    async def records(self) -> AsyncIterator[Document]:
        async for doc in self.db[AUDIT].find().sort("_id", ASCENDING):
            yield doc

    async def verify(self) -> audit_chain.ChainReport:
        docs = [d async for d in self.records()]
        return audit_chain.verify_chain(docs)


# ------------------------------------------------------------------ overview


async def _count_by_district(
    db: Db, collection: str, scope: dict[str, Any], match: dict[str, Any]
) -> dict[str, int]:
    query: dict[str, Any] = {"$and": [scope, match]} if scope and match else (scope or match)
    pipeline: list[dict[str, Any]] = [
        {"$match": query},
        {"$group": {"_id": "$district", "n": {"$sum": 1}}},
    ]
    out: dict[str, int] = {}
    async for row in await db[collection].aggregate(pipeline):
        if row["_id"] is not None:
            out[str(row["_id"])] = int(row["n"])
    return out


async def _grades_by_district(db: Db, scope: dict[str, Any]) -> dict[str, dict[str, int]]:
    graded = {"grade": {"$gt": ""}}  # a grade is a non-empty string; a range uses the index
    query: dict[str, Any] = {"$and": [scope, graded]} if scope else graded
    pipeline: list[dict[str, Any]] = [
        {"$match": query},
        {"$group": {"_id": {"d": "$district", "g": "$grade"}, "n": {"$sum": 1}}},
    ]
    out: dict[str, dict[str, int]] = {}
    async for row in await db["cases"].aggregate(pipeline):
        key = row["_id"]
        out.setdefault(str(key["d"]), {})[str(key["g"])] = int(row["n"])
    return out


OVERVIEW_METRICS: dict[str, tuple[str, dict[str, Any]]] = {
    "complaints": ("complaints", {}),
    "overdue_complaints": ("complaints", {"overdue": True}),
    "bounced_complaints": ("complaints", {"returns": {"$gte": 1}}),
    "cases": ("cases", {}),
    "top_tier_filings": ("filings", {"top_tier": True}),
    "filed_on_time": ("filings", {"top_tier": True, "filed": True, "late": {"$ne": True}}),
    "filed_late": ("filings", {"late": True}),
    "missing_filings": ("filings", {"missing": True, "filed": {"$ne": True}}),
    "leads_raised": (LEADS, {}),
    "leads_disposed": (LEADS, {"status": "disposed"}),
    "bounce_leads": (LEADS, {"kind": {"$in": list(BOUNCE_LEAD_KINDS)}}),
    "anomalies": (LEADS, {"kind": {"$in": list(ANOMALY_LEAD_KINDS)}}),
    "notices": ("notices", {}),
}
"""KPI name → (collection, filter): each counted per district within the caller's scope."""


async def overview(db: Db, scope: dict[str, Any]) -> list[Document]:
    """KPIs per district (only districts the scope can see, and all of them for the city)."""
    counts = {
        name: await _count_by_district(db, coll, scope, match)
        for name, (coll, match) in OVERVIEW_METRICS.items()
    }
    grades = await _grades_by_district(db, scope)
    city = load_city()
    seen = set().union(*(c.keys() for c in counts.values()), grades.keys())
    if "district" in scope and isinstance(scope["district"], str):
        codes = [scope["district"]]
    elif scope:
        codes = sorted(seen)
    else:
        codes = sorted({d.code for d in city.districts} | seen)
    rows = []
    for code in codes:
        district = city.district(code)
        row: Document = {"district": code, "name": district.name if district else code}
        for name in OVERVIEW_METRICS:
            row[name] = counts[name].get(code, 0)
        row["grades"] = grades.get(code, {})
        row["disposal_rate"] = disposal_rate(row["leads_raised"], row["leads_disposed"])
        rows.append(row)
    return rows
