"""The penalty service's collections, indexes and queries (its own database only).

- ``filings``: one document per case (``_id`` = case_id): the decided penalty, its top-tier
  judgement, deadline, filing, flags and review state. A decided penalty's ``unit``,
  ``unit_kind``, ``month`` and ``fine`` are what it counts in ``fine_totals``.
- ``flags``: one per finding (``_id`` = ``<kind>:<case_id>``), for the supervisors' list.
- ``anomalies``: one per unit-month (``_id`` = ``<unit>:<month>``), latest assessment.
- ``fine_totals``: one per unit kind and month (``_id`` = ``<unit_kind>:<month>``): each
  unit's sum and number of decided fines, what the anomaly judgement reads (kept in the
  decision's transaction; built once from the filings on an older database).
- ``letters``: 监督建议书 / 监督决定书 / 备案审查通过 notices, with the unit's reply.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.penalty.domain.records import (
    Anomaly,
    Filing,
    FineTotals,
    Flag,
    Letter,
    fine_totals_id,
)
from shared.aggregate import repository
from shared.mongo import DUPLICATE_KEY, Document, list_indexes
from shared.unit_of_work import AggregateRepository, UnitOfWork

FILINGS = "filings"
FLAGS = "flags"
ANOMALIES = "anomalies"
LETTERS = "letters"
FINE_TOTALS = "fine_totals"

Db = AsyncDatabase[Document]

# The order of each paged list; ``list_indexes`` builds the indexes that serve it.
FILINGS_ORDER = [("decided_at", DESCENDING), ("_id", ASCENDING)]
FLAGS_ORDER = [("raised_at", DESCENDING), ("_id", ASCENDING)]
ANOMALIES_ORDER = [("month", DESCENDING), ("_id", ASCENDING)]
LETTERS_ORDER = [("issued_at", DESCENDING), ("_id", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    FILINGS: [
        *list_indexes(
            FILINGS_ORDER, ["unit", "status", "flags", "large", "late", "missing", "top_tier"]
        ),
        IndexModel([("district", ASCENDING), ("decided_at", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("month", ASCENDING)], name="unit_month"),
        IndexModel([("status", ASCENDING)], name="by_status"),
    ],
    FLAGS: [
        *list_indexes(FLAGS_ORDER, ["unit"]),
        IndexModel([("kind", ASCENDING), ("raised_at", DESCENDING)], name="by_kind"),
        IndexModel([("district", ASCENDING), ("raised_at", DESCENDING)], name="by_district"),
        IndexModel([("case_id", ASCENDING)], name="by_case"),
    ],
    ANOMALIES: [
        *list_indexes(ANOMALIES_ORDER, ["unit", "unit_kind"]),
        IndexModel([("district", ASCENDING), ("month", DESCENDING)], name="by_district"),
        IndexModel([("anomalous", ASCENDING), ("month", DESCENDING)], name="by_outcome"),
    ],
    FINE_TOTALS: [],
    LETTERS: [
        *list_indexes(LETTERS_ORDER, ["unit", "kind", "status"]),
        IndexModel([("case_id", ASCENDING), ("issued_at", ASCENDING)], name="by_case"),
        IndexModel([("district", ASCENDING), ("issued_at", DESCENDING)], name="by_district"),
    ],
}
RETIRED: dict[str, list[str]] = {FILINGS: ["kind_month"]}
"""Indexes no query reads any more (the peer aggregation used ``kind_month``)."""


def filings(uow: UnitOfWork) -> AggregateRepository[Filing]:
    """Filings by case id, through the unit of work's identity map."""
    return repository(uow, FILINGS, Filing)


def flags(uow: UnitOfWork) -> AggregateRepository[Flag]:
    return repository(uow, FLAGS, Flag)


def fine_totals(uow: UnitOfWork) -> AggregateRepository[FineTotals]:
    """Fine totals by ``<unit_kind>:<month>``, through the identity map."""
    return repository(uow, FINE_TOTALS, FineTotals)


def letters(uow: UnitOfWork) -> AggregateRepository[Letter]:
    return repository(uow, LETTERS, Letter)


def anomalies(uow: UnitOfWork) -> AggregateRepository[Anomaly]:
    return repository(uow, ANOMALIES, Anomaly)


async def add_flag(uow: UnitOfWork, flag: Flag) -> bool:
    """Insert a flag once; returns False when it was already there (nothing to announce)."""
    repo = flags(uow)
    if await repo.get(flag.id) is not None:
        return False
    repo.add(flag)
    return True


async def count_letters(uow: UnitOfWork, case_id: str) -> int:
    coll = await uow.collection(LETTERS)
    return await coll.count_documents({"case_id": case_id}, session=uow.session)


# ------------------------------------------------------------------ fine totals


async def fine_totals_from_filings(db: Db) -> list[FineTotals]:
    """The fine totals as the decided filings give them (one aggregation over them all)."""
    cursor = await db[FILINGS].aggregate(
        [
            {"$match": {"decided": True}},
            {
                "$group": {
                    "_id": {"kind": "$unit_kind", "month": "$month", "unit": "$unit"},
                    "total": {"$sum": "$fine"},
                    "count": {"$sum": 1},
                }
            },
        ]
    )
    built: dict[str, FineTotals] = {}
    for row in await cursor.to_list():
        kind, month, unit = row["_id"]["kind"], row["_id"]["month"], row["_id"]["unit"]
        doc_id = fine_totals_id(kind, month)
        totals = built.get(doc_id) or FineTotals(id=doc_id, unit_kind=kind, month=month)
        totals.add(unit, float(row["total"]), int(row["count"]))
        built[doc_id] = totals
    return [built[doc_id] for doc_id in sorted(built)]


async def build_fine_totals(db: Db) -> int:
    """An existing database (decided filings, no fine totals yet) gets its totals once, from
    one aggregation; returns how many documents it wrote (0: nothing to build).

    Replicas starting together may both build: the second one's inserts find the documents
    there (written by the first, maybe already counting newer decisions) and leave them."""
    if await db[FINE_TOTALS].find_one({}, {"_id": 1}) is not None:
        return 0
    if await db[FILINGS].find_one({"decided": True}, {"_id": 1}) is None:
        return 0
    docs = [totals.to_doc() for totals in await fine_totals_from_filings(db)]
    try:
        await db[FINE_TOTALS].insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details["writeErrors"]):
            raise
        return len(docs) - len(exc.details["writeErrors"])
    return len(docs)
