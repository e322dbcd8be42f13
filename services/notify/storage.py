"""Collections of the notify service and the queries on them.

- ``notices``: one document per notice (``_id`` from the idempotency key, which is also
  unique-indexed), with the rendered text and the status of every channel;
- ``deliveries``: one document per notice and external channel (``<notice>:<channel>``),
  the work queue of the delivery worker, claimed by lease;
- ``counters``: document-number sequences, one per issuer, kind and year.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, list_indexes

NOTICES = "notices"
DELIVERIES = "deliveries"
COUNTERS = "counters"

# The order of the paged notice lists; ``list_indexes`` builds the indexes that serve it.
NOTICES_ORDER = [("created_at", DESCENDING), ("_id", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    NOTICES: [
        *list_indexes(
            NOTICES_ORDER,
            [
                *("recipient_unit", "district", "kind", "status", "acknowledged_at"),
                *("issuer", "subject_type", "subject_id"),
            ],
        ),
        IndexModel([("idempotency_key", ASCENDING)], name="one_per_key", unique=True),
        IndexModel([("recipient_unit", ASCENDING), ("created_at", DESCENDING)], name="inbox"),
        IndexModel([("district", ASCENDING), ("created_at", DESCENDING)], name="by_district"),
        IndexModel([("status", ASCENDING)], name="by_status"),
    ],
    DELIVERIES: [
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
        IndexModel([("notice_id", ASCENDING)], name="by_notice"),
    ],
    COUNTERS: [],
}

Session = AsyncClientSession | None


def delivery_id(notice_id: str, channel: str) -> str:
    return f"{notice_id}:{channel}"


async def notice_by_key(db: AsyncDatabase[Document], key: str, session: Session) -> Document | None:
    return await db[NOTICES].find_one({"idempotency_key": key}, session=session)


async def get_notice(
    db: AsyncDatabase[Document], notice_id: str, session: Session = None
) -> Document | None:
    return await db[NOTICES].find_one({"_id": notice_id}, session=session)


async def next_sequence(db: AsyncDatabase[Document], session: Session, key: str) -> int:
    """Atomic counter; inside the issuing transaction, so an aborted notice takes no number."""
    doc = await db[COUNTERS].find_one_and_update(
        {"_id": key},
        {"$inc": {"seq": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert doc is not None
    return int(doc["seq"])


async def insert_notice(db: AsyncDatabase[Document], session: Session, doc: Document) -> None:
    await db[NOTICES].insert_one(doc, session=session)


async def update_notice(
    db: AsyncDatabase[Document], session: Session, notice_id: str, changes: dict[str, Any]
) -> Document:
    doc = await db[NOTICES].find_one_and_update(
        {"_id": notice_id},
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is None:
        raise LookupError(notice_id)
    return doc


async def insert_deliveries(
    db: AsyncDatabase[Document], session: Session, docs: list[Document]
) -> None:
    if docs:
        await db[DELIVERIES].insert_many(docs, session=session)


async def deliveries_of(
    db: AsyncDatabase[Document], notice_id: str, session: Session = None
) -> list[Document]:
    return (
        await db[DELIVERIES]
        .find({"notice_id": notice_id}, session=session)
        .sort("channel", ASCENDING)
        .to_list()
    )


async def get_delivery(
    db: AsyncDatabase[Document], did: str, session: Session = None
) -> Document | None:
    return await db[DELIVERIES].find_one({"_id": did}, session=session)


async def claim_delivery(
    db: AsyncDatabase[Document], *, owner: str, token: str, now: dt.datetime, lease_s: float
) -> Document | None:
    """Take one due delivery for ``lease_s``; counts the attempt at once, so a replica that
    dies mid-send still uses up one of the bounded attempts."""
    return await db[DELIVERIES].find_one_and_update(
        {
            "status": "pending",
            "next_attempt_at": {"$lte": now},
            "$or": [{"claim_until": None}, {"claim_until": {"$lte": now}}],
        },
        {
            "$set": {
                "claimed_by": owner,
                "claim_token": token,
                "claim_until": now + dt.timedelta(seconds=lease_s),
            },
            "$inc": {"attempts": 1},
        },
        sort=[("next_attempt_at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )


async def settle_delivery(
    db: AsyncDatabase[Document],
    session: Session,
    *,
    did: str,
    token: str,
    changes: dict[str, Any],
    history: dict[str, Any],
) -> Document | None:
    """Record an attempt's outcome, but only while our claim still holds (else None)."""
    return await db[DELIVERIES].find_one_and_update(
        {"_id": did, "claim_token": token, "status": "pending"},
        {
            "$set": {**changes, "claimed_by": None, "claim_until": None, "claim_token": None},
            "$push": {"history": {"$each": [history], "$slice": -50}},
        },
        return_document=ReturnDocument.AFTER,
        session=session,
    )
