"""Collections of the notify service and the queries on them.

- ``notices``: one document per notice (``_id`` from the idempotency key, which is also
  unique-indexed), with the rendered text and the status of every channel;
- ``deliveries``: one document per notice and external channel (``<notice>:<channel>``),
  the work queue of the delivery worker, claimed by lease;
- ``counters``: document-number sequences, one per issuer, kind and year.

Handlers see them as the typed aggregates of :mod:`services.notify.domain.aggregates`
(:func:`notices`, :func:`deliveries`, :func:`counters`); the documents keep the model's
fields with ``_id`` for ``id``, so the read API pages them as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.notify.domain.aggregates import Counter, Delivery, Notice
from services.notify.domain.letters import Letter
from shared.aggregate import repository
from shared.mongo import Document, list_indexes
from shared.unit_of_work import AggregateRepository, UnitOfWork

NOTICES = "notices"
DELIVERIES = "deliveries"
COUNTERS = "counters"
LETTERS = "letters"

# The order of the paged notice lists; ``list_indexes`` builds the indexes that serve it.
NOTICES_ORDER = [("created_at", DESCENDING), ("_id", ASCENDING)]
LETTERS_ORDER = [("issued_at", DESCENDING), ("_id", ASCENDING)]

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
    LETTERS: list_indexes(
        LETTERS_ORDER,
        ["district", "recipient_unit", "issuer", "kind", "status", "subject_type", "subject_id"],
    ),
}


def delivery_id(notice_id: str, channel: str) -> str:
    return f"{notice_id}:{channel}"


# -- documents ↔ aggregates (the stored shape is the model's fields, ``_id`` for ``id``) ---


def notice_doc(notice: Notice) -> Document:
    body = notice.model_dump(exclude={"id", "channels"})
    # A channel keeps only what applies to it (a skipped one has no attempts, and so on).
    channels = {
        channel: state.model_dump(exclude_none=True) for channel, state in notice.channels.items()
    }
    return {"_id": notice.id, **body, "channels": channels}


def notice_of(doc: Mapping[str, Any]) -> Notice:
    return Notice.model_validate({"id": doc["_id"], **doc})


def delivery_doc(delivery: Delivery) -> Document:
    return {"_id": delivery.id, **delivery.model_dump(exclude={"id"})}


def delivery_of(doc: Mapping[str, Any]) -> Delivery:
    return Delivery.model_validate({"id": doc["_id"], **doc})


def counter_doc(counter: Counter) -> Document:
    return {"_id": counter.id, **counter.model_dump(exclude={"id"})}


def counter_of(doc: Mapping[str, Any]) -> Counter:
    return Counter.model_validate({"id": doc["_id"], **doc})


# -- write side: through the unit of work (one read per batch, one write at commit) ------


def notices(uow: UnitOfWork) -> AggregateRepository[Notice]:
    """Notices by id, through the unit of work's identity map."""
    return AggregateRepository(uow.documents(NOTICES), notice_doc, notice_of)


def deliveries(uow: UnitOfWork) -> AggregateRepository[Delivery]:
    """Delivery jobs by ``<notice>:<channel>``, through the unit of work's identity map."""
    return AggregateRepository(uow.documents(DELIVERIES), delivery_doc, delivery_of)


def counters(uow: UnitOfWork) -> AggregateRepository[Counter]:
    """Document-number sequences by key, through the unit of work's identity map."""
    return AggregateRepository(uow.documents(COUNTERS), counter_doc, counter_of)


def letters(uow: UnitOfWork) -> AggregateRepository[Letter]:
    """Supervision letters by id (their notice's), through the unit of work's identity map."""
    return repository(uow, LETTERS, Letter)


def add_notice(uow: UnitOfWork, notice: Notice) -> None:
    """A new notice: inserted at commit (the unique idempotency key guards a racing twin)."""
    uow.documents(NOTICES).add(notice_doc(notice))


def add_deliveries(uow: UnitOfWork, jobs: Sequence[Delivery]) -> None:
    for job in jobs:
        uow.documents(DELIVERIES).add(delivery_doc(job))


async def next_sequence(uow: UnitOfWork, key: str) -> int:
    """Document-number counter; inside the issuing transaction, so an aborted notice takes
    no number (concurrent issuers conflict on it and one transaction runs again)."""
    repo = counters(uow)
    counter = await repo.get(key) or Counter(id=key)
    seq = counter.next()
    repo.put(counter)
    return seq


# -- read side ---------------------------------------------------------------------------


async def notice_document(db: AsyncDatabase[Document], notice_id: str) -> Document | None:
    """The stored notice as it is (the API masks and shapes it)."""
    return await db[NOTICES].find_one({"_id": notice_id})


async def deliveries_of(db: AsyncDatabase[Document], notice_id: str) -> list[Document]:
    return await db[DELIVERIES].find({"notice_id": notice_id}).sort("channel", ASCENDING).to_list()


async def read_notices(db: AsyncDatabase[Document], ids: Sequence[str]) -> dict[str, Notice]:
    """Notices by id outside a unit of work, one ``$in`` query (the delivery worker, before
    sending a batch)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    found = await db[NOTICES].find({"_id": {"$in": wanted}}).to_list()
    return {doc["_id"]: notice_of(doc) for doc in found}


def claimable(now: dt.datetime) -> Document:
    """Pending, due, and claimed by nobody (or by a claim whose lease ran out).

    "Not claimed past now" is ``$not: {$gt}`` (no claim, or one that ran out), not an
    ``$or``: SecantusDB scans the whole collection for any ``$or`` (measured: 97 ms with
    10,000 deliveries, against 1 ms for this index range on ``(status, next_attempt_at)``)."""
    return {
        "status": "pending",
        "next_attempt_at": {"$lte": now},
        "claim_until": {"$not": {"$gt": now}},
    }


async def due_delivery_ids(db: AsyncDatabase[Document], now: dt.datetime, limit: int) -> list[str]:
    """Up to ``limit`` claimable deliveries, earliest due first: a range read of the ``due``
    index (outside a transaction: it only picks candidates, the claim checks them again)."""
    cursor = (
        db[DELIVERIES]
        .find(claimable(now), {"_id": 1})
        .sort("next_attempt_at", ASCENDING)
        .limit(limit)
    )
    return [doc["_id"] async for doc in cursor]


async def claim_deliveries(
    uow: UnitOfWork,
    ids: Sequence[str],
    *,
    owner: str,
    token: str,
    now: dt.datetime,
    lease_s: float,
) -> list[Delivery]:
    """Take those of ``ids`` still claimable for ``lease_s``, all with one claim ``token``
    (one ``update_many``), and read back the ones this claim got. Counts the attempt at
    once, so a replica that dies mid-send still uses up one of the bounded attempts. In a
    transaction, like every write to a collection that transactions write (see
    ``shared.timers``): a replica claiming the same deliveries at the same moment conflicts
    and runs again, finding them taken."""
    if not ids:
        return []
    coll = await uow.collection(DELIVERIES)
    await coll.update_many(
        {"_id": {"$in": list(ids)}, **claimable(now)},
        {
            "$set": {
                "claimed_by": owner,
                "claim_token": token,
                "claim_until": now + dt.timedelta(seconds=lease_s),
            },
            "$inc": {"attempts": 1},
        },
        session=uow.session,
    )
    mine = await coll.find(
        {"_id": {"$in": list(ids)}, "claim_token": token}, session=uow.session
    ).to_list()
    jobs = [delivery_of(doc) for doc in mine]
    jobs.sort(key=lambda d: (d.next_attempt_at, d.id))
    return jobs
