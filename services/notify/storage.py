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
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, list_indexes
from shared.unit_of_work import UnitOfWork

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


def delivery_id(notice_id: str, channel: str) -> str:
    return f"{notice_id}:{channel}"


def set_fields(doc: Document, changes: dict[str, Any]) -> None:
    """``$set`` semantics in memory: ``"channels.email"`` sets ``doc["channels"]["email"]``."""
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value


# -- write side: through the unit of work (one read per batch, one write at commit) ------


async def get_notice(uow: UnitOfWork, notice_id: str) -> Document | None:
    return await uow.documents(NOTICES).get(notice_id)


def add_notice(uow: UnitOfWork, doc: Document) -> None:
    uow.documents(NOTICES).add(doc)


async def update_notice(uow: UnitOfWork, notice_id: str, changes: dict[str, Any]) -> Document:
    notices = uow.documents(NOTICES)
    doc = await notices.get(notice_id)
    if doc is None:
        raise LookupError(notice_id)
    set_fields(doc, changes)
    notices.put(doc)
    return doc


async def next_sequence(uow: UnitOfWork, key: str) -> int:
    """Document-number counter; inside the issuing transaction, so an aborted notice takes
    no number (concurrent issuers conflict on it and one transaction runs again)."""
    counters = uow.documents(COUNTERS)
    doc = await counters.get(key) or {"_id": key, "seq": 0}
    doc["seq"] = int(doc["seq"]) + 1
    counters.put(doc)
    return int(doc["seq"])


def add_deliveries(uow: UnitOfWork, docs: list[Document]) -> None:
    for doc in docs:
        uow.documents(DELIVERIES).add(doc)


async def get_delivery(uow: UnitOfWork, did: str) -> Document | None:
    return await uow.documents(DELIVERIES).get(did)


def put_delivery(uow: UnitOfWork, doc: Document) -> None:
    uow.documents(DELIVERIES).put(doc)


async def settle_delivery(
    uow: UnitOfWork,
    *,
    did: str,
    token: str,
    changes: dict[str, Any],
    history: dict[str, Any],
) -> Document | None:
    """Record an attempt's outcome, but only while our claim still holds (else None)."""
    doc = await get_delivery(uow, did)
    if doc is None or doc.get("claim_token") != token or doc.get("status") != "pending":
        return None
    doc.update(changes, claimed_by=None, claim_until=None, claim_token=None)
    doc["history"] = [*doc.get("history", []), history][-50:]
    put_delivery(uow, doc)
    return doc


# -- read side ---------------------------------------------------------------------------


async def read_notice(db: AsyncDatabase[Document], notice_id: str) -> Document | None:
    return await db[NOTICES].find_one({"_id": notice_id})


async def deliveries_of(db: AsyncDatabase[Document], notice_id: str) -> list[Document]:
    return await db[DELIVERIES].find({"notice_id": notice_id}).sort("channel", ASCENDING).to_list()


async def claim_delivery(
    uow: UnitOfWork, *, owner: str, token: str, now: dt.datetime, lease_s: float
) -> Document | None:
    """Take one due delivery for ``lease_s``; counts the attempt at once, so a replica that
    dies mid-send still uses up one of the bounded attempts. In a transaction, like every
    write to a collection that transactions write (see ``shared.timers.TimerWheel._claim``)."""
    deliveries = await uow.collection(DELIVERIES)
    return await deliveries.find_one_and_update(
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
        session=uow.session,
    )
