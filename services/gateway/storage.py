"""The gateway's collections, indexes and queries (its own database; no other service's).

Read models: ``complaints``, ``cases``, ``filings``, ``notices``, and from the inspection
service ``inspections``, ``inspection_plans``, ``officers``, ``reviews``, ``inspection_rates``
(latest snapshot per entity),
``feed`` (every entity event with its trace id, a page per projection transaction: the
live feed and each entity's timeline), ``leads`` (监督线索 with disposal),
``dead_letters`` (raw DLT records), ``quarantine`` (shared with the runtime: refused input).
Access: ``users``, ``api_keys``, ``accepted`` (ingest idempotency), ``audit`` (hash chain),
``refusal_counts`` (unauthenticated ingest refusals counted per hour and code).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.gateway.domain import audit as audit_chain
from services.gateway.domain.projections import ENTITIES, add_to_page, new_feed_page
from shared.consumer import QUARANTINE
from shared.identity import in_scope
from shared.mongo import Document, list_indexes, update_by_id
from shared.retrying import Retry, transient_transaction
from shared.unit_of_work import Lookup, UnitOfWork

USERS = "users"
API_KEYS = "api_keys"
ACCEPTED = "accepted"
AUDIT = "audit"
FEED = "feed"
LEGACY_TIMELINE = "timeline"
"""One document per event, as versions before the feed pages kept it (folded at start)."""
LEADS = "leads"
DEAD_LETTERS = "dead_letters"
REFUSAL_COUNTS = "refusal_counts"

Db = AsyncDatabase[Document]
log = structlog.get_logger(__name__)


# The order of each paged list; ``list_indexes`` builds the indexes that serve it.
ENTITY_ORDER = [("event_time", DESCENDING), ("_id", ASCENDING)]
LEADS_ORDER = [("raised_at", DESCENDING), ("_id", ASCENDING)]
RECENT_FIRST = [("at", DESCENDING), ("_id", ASCENDING)]  # dead letters, quarantine
# What every entity list filters on (the read API's query parameters) and pages in order.
LISTED = ["status", "flags", "key_ids"]
# Filters that single out one entity or a few: a plain index, no sort to serve. Compounded
# with the order, the growing ``event_ids`` array would rewrite every one of its index entries
# on each projection update (the order field changes); alone, an update adds one entry.
SINGLING_OUT = ["subject_id", "event_ids"]
# Fields the overview tallies filter on, by collection: an index where no query uses it would
# only cost every projection write (each index is maintained on every update).
TALLIED = {
    "complaints": ["overdue"],
    "cases": ["grade"],
    "filings": ["top_tier", "late", "missing"],
}


def _entity_indexes(collection: str) -> list[IndexModel]:
    return [
        *list_indexes(ENTITY_ORDER, [*LISTED, *TALLIED.get(collection, [])]),
        *(IndexModel([(field, ASCENDING)], name=f"by_{field}") for field in SINGLING_OUT),
        IndexModel([("district", ASCENDING), ("event_time", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("event_time", DESCENDING)], name="by_unit"),
    ]


INSPECTIONS = "inspections"
OFFICERS = "officers"
REVIEWS = "reviews"
INSPECTION_RATES = "inspection_rates"


def _inspection_indexes() -> list[IndexModel]:
    """The district summary: inspections since a day, in a district, a unit or the city."""
    return [
        IndexModel([("at", DESCENDING)], name="since"),
        IndexModel([("district", ASCENDING), ("at", DESCENDING)], name="district_since"),
        IndexModel([("unit", ASCENDING), ("at", DESCENDING)], name="unit_since"),
    ]


INDEXES: dict[str, list[IndexModel]] = {
    **{kind.collection: _entity_indexes(kind.collection) for kind in ENTITIES},
    INSPECTIONS: [*_entity_indexes(INSPECTIONS), *_inspection_indexes()],
    FEED: [
        IndexModel([("keys", ASCENDING)], name="by_entity"),
        IndexModel([("last", DESCENDING)], name="feed"),
        IndexModel([("districts", ASCENDING), ("last", DESCENDING)], name="feed_district"),
        IndexModel([("units", ASCENDING), ("last", DESCENDING)], name="feed_unit"),
    ],
    LEADS: [
        *list_indexes(LEADS_ORDER, ["kind", "status", "event_ids", "key_ids", "subject_id"]),
        IndexModel([("district", ASCENDING), ("raised_at", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("raised_at", DESCENDING)], name="by_unit"),
    ],
    DEAD_LETTERS: [
        IndexModel([("at", DESCENDING)], name="recent"),
        *list_indexes(RECENT_FIRST, ["original_topic"]),
    ],
    QUARANTINE: [
        IndexModel([("district", ASCENDING), ("at", DESCENDING)], name="by_district"),
        *list_indexes(RECENT_FIRST, ["source", "code", "event_id", "key_id", "subject_id"]),
    ],
    ACCEPTED: [IndexModel([("subject_id", ASCENDING), ("at", ASCENDING)], name="by_subject")],
    API_KEYS: [IndexModel([("name", ASCENDING), ("created_at", ASCENDING)], name="by_name")],
    REFUSAL_COUNTS: [IndexModel([("hour", DESCENDING)], name="by_hour")],
}

RETIRED_INDEXES = {kind.collection: ["recent"] for kind in ENTITIES}
"""Indexes earlier versions built that no query needs any more (``list_order`` serves them)."""


COUNTERS = "counters"
FEED_COUNTER = "timeline"
"""The feed counter's id (named when the feed was one ``timeline`` document per event; kept,
so an upgraded database numbers on)."""


FEED_PAGE_ENTRIES = 500
"""Entries on one page at most: a long replay batch stays far below MongoDB's 16 MB document
limit (an entry with its change is one or two kilobytes)."""


async def append_to_feed(uow: UnitOfWork, entry: Document, most: int = FEED_PAGE_ENTRIES) -> int:
    """Number ``entry`` (:func:`next_seq`) and add it to this unit's feed page (one page per
    transaction, written at commit, another after ``most`` entries); returns its number."""
    seq = await next_seq(uow)
    feed = uow.documents(FEED)
    pages = feed.added()
    if pages and pages[-1]["count"] < most:
        page = pages[-1]
    else:
        page = new_feed_page(uuid.uuid4().hex)
        feed.add(page, fresh=True)  # kept as it is: later entries of the unit fill it
    add_to_page(page, {**entry, "seq": seq})
    return seq


async def next_seq(uow: UnitOfWork) -> int:
    """Feed order (each entry's ``seq``): a counter taken inside the projection's transaction.

    It is read once per transaction and written back at commit; a second transaction that
    read it meanwhile conflicts on that write and runs again, so numbers become visible in
    commit order and a reader that has seen ``seq = n`` has seen every committed entry below
    ``n``. The feed's ``seq > last`` cursor therefore never skips an entry, whatever the
    replicas' clocks say. The projection consumers claim the counter first thing in their
    batch (``EventConsumer.claims``), so replicas wait for each other's commit instead of
    losing a whole batch's work to that conflict.
    """
    counters = uow.documents(COUNTERS)
    doc = await counters.get(FEED_COUNTER) or {"_id": FEED_COUNTER}
    doc["seq"] = int(doc.get("seq", 0)) + 1
    counters.put(doc)
    return int(doc["seq"])


async def init_seq(db: Db) -> None:
    """Start the counter above any ``seq`` already stored (data written before the counter
    existed used nanosecond clock readings). In a transaction: see ``in_transaction``."""
    top = await db[FEED].find_one({}, {"last": 1}, sort=[("last", DESCENDING)])
    highest = int(top["last"]) if top and isinstance(top.get("last"), int) else 0

    async def raise_counter(session: AsyncClientSession) -> None:
        await db[COUNTERS].update_one(
            {"_id": FEED_COUNTER}, {"$max": {"seq": highest}}, upsert=True, session=session
        )

    await in_transaction(db, raise_counter)


async def fold_legacy_timeline(db: Db, chunk: int = 500) -> int:
    """Move the entries of the one-document-per-event ``timeline`` of earlier versions onto
    feed pages, in feed order, then drop it; returns how many this call moved.

    One read in ``seq`` order (SecantusDB sorts a sorted range in memory at each query: a
    query per chunk would sort what is left again, every time), then a chunk per transaction:
    its page inserted and its documents deleted together, so a stop half-way loses nothing
    and the next start goes on. A replica folding at the same time conflicts on the deletes;
    run again, the chunk's documents are gone and it adds no page.
    """
    if LEGACY_TIMELINE not in await db.list_collection_names():
        return 0
    legacy = db[LEGACY_TIMELINE]

    async def fold(docs: list[Document]) -> int:
        async def work(session: AsyncClientSession) -> int:
            ids = {"_id": {"$in": [d["_id"] for d in docs]}}
            there = {d["_id"] async for d in legacy.find(ids, {"_id": 1}, session=session)}
            kept = [d for d in docs if d["_id"] in there]
            if not kept:
                return 0
            page = new_feed_page(uuid.uuid4().hex)
            for doc in kept:
                add_to_page(page, doc)
            await db[FEED].insert_one(page, session=session)
            await legacy.delete_many({"_id": {"$in": list(there)}}, session=session)
            return len(kept)

        return int(await in_transaction(db, work))

    moved = 0
    docs: list[Document] = []
    try:
        async for doc in legacy.find({}).sort("seq", ASCENDING).batch_size(chunk):
            docs.append(doc)
            if len(docs) >= chunk:
                moved, docs = moved + await fold(docs), []
    except PyMongoError:
        if LEGACY_TIMELINE in await db.list_collection_names():
            raise
        return moved  # another replica folded the rest and dropped it
    if docs:
        moved += await fold(docs)
    await db.drop_collection(LEGACY_TIMELINE)
    log.info("legacy timeline folded into feed pages", entries=moved)
    return moved


CONFLICTS = Retry(transient_transaction, attempts=20, wait_initial=0.02, wait_max=1.0)
"""A write of ``in_transaction`` that lost a conflict runs again, patiently (20 tries)."""


async def in_transaction(
    db: Db, work: Callable[[AsyncClientSession], Awaitable[Any]], attempts: int = 20
) -> Any:
    """A write outside the unit of work, in its own transaction, retried on conflicts.

    Every write to a collection that transactions also write goes in a transaction: a
    replica killed mid-transaction leaves its documents locked until the server reaps it,
    and on SecantusDB a plain write to such a document retries without end while holding
    the collection (see ``shared.timers``).
    """

    async def once() -> Any:
        async with db.client.start_session() as session:
            async with await session.start_transaction():
                return await work(session)

    return await CONFLICTS.times(attempts)(once)


# ------------------------------------------------------------------ users and keys


async def insert_user(db: Db, user: Document) -> None:
    await db[USERS].insert_one(user)


async def find_user(db: Db, username: str) -> Document | None:
    return await db[USERS].find_one({"_id": username})


async def insert_api_key(db: Db, record: Document) -> None:
    await db[API_KEYS].insert_one(record)


async def find_api_key(db: Db, key_id: str) -> Document | None:
    return await db[API_KEYS].find_one({"_id": key_id, "revoked": {"$ne": True}})


async def list_api_keys(db: Db, *, include_revoked: bool = False) -> list[Document]:
    query: Document = {} if include_revoked else {"revoked": {"$ne": True}}
    return await db[API_KEYS].find(query, {"hash": 0}).sort("created_at", ASCENDING).to_list()


async def revoke_api_key(db: Db, key_id: str, at: datetime) -> Document | None:
    """Mark a key revoked (kept for the record); None when there is no such active key."""
    return await update_by_id(
        db[API_KEYS],
        {"_id": key_id, "revoked": {"$ne": True}},
        {"$set": {"revoked": True, "revoked_at": at}},
        projection={"hash": 0},
    )


# ------------------------------------------------------------------ unauthenticated refusals


async def count_refusal(db: Db, code: str, remote: str | None, at: datetime) -> int:
    """Count one unauthenticated refusal in its hour; returns the count so far that hour."""
    hour = at.replace(minute=0, second=0, microsecond=0)
    doc = await update_by_id(
        db[REFUSAL_COUNTS],
        {"_id": f"{hour:%Y-%m-%dT%H}:{code}"},
        {
            "$inc": {"count": 1},
            "$set": {"last_at": at, "last_remote": remote},
            "$setOnInsert": {"hour": hour, "code": code},
        },
        upsert=True,
    )
    return int(doc["count"]) if doc else 1


async def refusal_counts(db: Db, since: datetime) -> list[Document]:
    return await db[REFUSAL_COUNTS].find({"hour": {"$gte": since}}).sort("hour", -1).to_list()


ACCEPTED_BY_SUBJECT = Lookup(ACCEPTED, "subject_id")
"""Accepted ingest records by the entity they are about (prefetched for a whole batch)."""
ACCEPTED_FROM_LIMIT = 200


async def accepted_from(uow: UnitOfWork, subject_id: str) -> list[Document]:
    """The accepted ingest records about one entity (its id is their partition key), oldest
    first; the consumer prefetches them for the batch (``ACCEPTED_BY_SUBJECT``)."""
    found = await uow.lookup(ACCEPTED_BY_SUBJECT, {"key_id": 1, "at": 1, "subject_id": 1}).find(
        subject_id
    )
    return sorted(found, key=lambda d: (d.get("at") or 0, d["_id"]))[:ACCEPTED_FROM_LIMIT]


# ------------------------------------------------------------------ ingest


async def known_event_ids(uow: UnitOfWork, ids: list[str]) -> set[str]:
    """Which of ``ids`` were accepted before (one ``$in`` query for the whole request)."""
    accepted = uow.documents(ACCEPTED)
    found = await accepted.get_many(ids)
    return set(found)


def mark_accepted(uow: UnitOfWork, records: list[Document]) -> None:
    for record in records:
        uow.documents(ACCEPTED).add(record)


def quarantine(uow: UnitOfWork, doc: Document) -> None:
    uow.documents(QUARANTINE).add(doc)


async def upsert_quarantine(uow: UnitOfWork, doc: Document) -> None:
    """A record announced on ``ingest.quarantine`` (kept once, whoever announced it)."""
    kept = uow.documents(QUARANTINE)
    if await kept.get(doc["_id"]) is None:
        kept.add(doc)


# ------------------------------------------------------------------ audit


class AuditLog:
    """Appends to the hash chain; ``seq`` is the ``_id`` so two writers cannot fork it."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self._lock = asyncio.Lock()
        self._head: Document | None = None
        """The last record this replica knows; read from MongoDB only when another replica
        appended meanwhile (the insert of the next ``seq`` then fails), so an append costs one
        insert however long the chain is."""

    async def _read_head(self) -> Document | None:
        head = await self.db[COUNTERS].find_one({"_id": AUDIT_HEAD})
        return head["record"] if head is not None else await last_audit_record(self.db[AUDIT])

    async def append(self, *, at: datetime, **fields: Any) -> Document:
        async with self._lock:
            if self._head is None:
                self._head = await self._read_head()
            for _ in range(50):
                record = audit_chain.chain(self._head, at=at, **fields)

                async def insert(session: AsyncClientSession, record: Document = record) -> None:
                    await self.db[AUDIT].insert_one(
                        {"_id": record["seq"], **record}, session=session
                    )
                    await self.db[COUNTERS].replace_one(
                        {"_id": AUDIT_HEAD}, audit_head(record), upsert=True, session=session
                    )

                try:
                    await in_transaction(self.db, insert)
                except DuplicateKeyError:  # another replica appended first: chain after it
                    self._head = await self._read_head()
                    continue
                self._head = record
                return record
        raise RuntimeError("audit log contended: could not append")

    async def records(self) -> AsyncIterator[Document]:
        async for doc in self.db[AUDIT].find().sort("_id", ASCENDING):
            yield doc

    async def verify(self) -> audit_chain.ChainReport:
        docs = [d async for d in self.records()]
        return audit_chain.verify_chain(docs)


async def append_audit_in(uow: UnitOfWork, *, at: datetime, **fields: Any) -> Document:
    """Append inside the unit of work (an audit event from another service: the inbox and
    the record commit together, so a redelivered event is chained once). A concurrent append
    makes the transaction fail and the consumer runs it again."""
    audit, counters = await uow.collection(AUDIT), uow.documents(COUNTERS)
    head = await counters.get(AUDIT_HEAD)
    prev = head["record"] if head is not None else await last_audit_record(audit, uow.session)
    record = audit_chain.chain(prev, at=at, **fields)
    await audit.insert_one({"_id": record["seq"], **record}, session=uow.session)
    counters.put(audit_head(record))
    return record


AUDIT_HEAD = "audit"
"""The ``counters`` document that holds the chain's last record, written with each append:
finding the head is one ``_id`` read. The largest ``_id`` would be a sort of the whole chain
on SecantusDB (0.4 s at 20,000 records, measured), on every audited ingest."""


def audit_head(record: Document) -> Document:
    return {"_id": AUDIT_HEAD, "record": record}


async def last_audit_record(
    audit: Any, session: AsyncClientSession | None = None
) -> Document | None:
    """The head of a chain written before :data:`AUDIT_HEAD` existed (read once: the next
    append writes the head document)."""
    doc: Document | None = await audit.find_one(sort=[("_id", DESCENDING)], session=session)
    return doc


# ------------------------------------------------------------------ leads and dead letters


async def lead_in_scope(uow: UnitOfWork, lead_id: str, scope: dict[str, Any]) -> Document | None:
    """The lead (a copy, through the unit of work) when it lies in ``scope``; else None."""
    lead = await uow.documents(LEADS).get(lead_id)
    return lead if lead is not None and in_scope(scope, lead) else None


def save_lead(uow: UnitOfWork, lead: Document) -> None:
    uow.documents(LEADS).put(lead)


async def mark_replayed(db: Db, letter_id: str, by: str, at: datetime) -> Document | None:
    """Count one replay of a dead letter (written by no transaction: a plain update)."""
    return await update_by_id(
        db[DEAD_LETTERS],
        {"_id": letter_id},
        {"$inc": {"replays": 1}, "$set": {"replayed_at": at, "replayed_by": by}},
        projection={"headers_b64": 0, "value_b64": 0},
    )
