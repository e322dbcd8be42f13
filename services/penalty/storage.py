"""The penalty service's collections, indexes and queries (its own database only).

- ``filings``: one document per case (``_id`` = case_id): the decided penalty, its top-tier
  judgement, deadline, filing, flags and review state. Decided penalties are also the input
  of the fine-anomaly aggregation (``unit``, ``unit_kind``, ``month``, ``fine``).
- ``flags``: one per finding (``_id`` = ``<kind>:<case_id>``), for the supervisors' list.
- ``anomalies``: one per unit-month (``_id`` = ``<unit>:<month>``), latest assessment.
- ``letters``: 监督建议书 / 监督决定书 / 备案审查通过 notices, with the unit's reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.penalty.domain.anomaly import MonthTotal
from shared.mongo import (
    Document,
    get_document,
    insert_document,
    list_indexes,
    put_document,
)

FILINGS = "filings"
FLAGS = "flags"
ANOMALIES = "anomalies"
LETTERS = "letters"

Db = AsyncDatabase[Document]
Session = AsyncClientSession | None

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
        IndexModel([("unit_kind", ASCENDING), ("month", ASCENDING)], name="kind_month"),
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
    LETTERS: [
        *list_indexes(LETTERS_ORDER, ["unit", "kind", "status"]),
        IndexModel([("case_id", ASCENDING), ("issued_at", ASCENDING)], name="by_case"),
        IndexModel([("district", ASCENDING), ("issued_at", DESCENDING)], name="by_district"),
    ],
}


# Whole-document access by id, shared by every service.
get, put, insert = get_document, put_document, insert_document


async def add_flag(db: Db, session: Session, flag: Document) -> bool:
    """Insert a flag once; returns False when it was already there (nothing to announce)."""
    result = await db[FLAGS].update_one(
        {"_id": flag["_id"]}, {"$setOnInsert": flag}, upsert=True, session=session
    )
    return result.upserted_id is not None


async def count_letters(db: Db, session: Session, case_id: str) -> int:
    return await db[LETTERS].count_documents({"case_id": case_id}, session=session)


# ------------------------------------------------------------------ anomaly aggregation


async def unit_month_totals(
    db: Db, session: Session, unit: str, months: Sequence[str]
) -> dict[str, MonthTotal]:
    """Sum of fines and number of penalties of ``unit`` in each of ``months``."""
    cursor = await db[FILINGS].aggregate(
        [
            {"$match": {"decided": True, "unit": unit, "month": {"$in": list(months)}}},
            {"$group": {"_id": "$month", "total": {"$sum": "$fine"}, "count": {"$sum": 1}}},
        ],
        session=session,
    )
    rows = await cursor.to_list()
    return {r["_id"]: MonthTotal(total=float(r["total"]), count=int(r["count"])) for r in rows}


async def peer_totals(
    db: Db, session: Session, unit_kind: str, month: str, exclude_unit: str
) -> list[MonthTotal]:
    """Each other unit of the same kind with fines in ``month``: its total and count."""
    cursor = await db[FILINGS].aggregate(
        [
            {
                "$match": {
                    "decided": True,
                    "unit_kind": unit_kind,
                    "month": month,
                    "unit": {"$ne": exclude_unit},
                }
            },
            {"$group": {"_id": "$unit", "total": {"$sum": "$fine"}, "count": {"$sum": 1}}},
            {"$sort": {"_id": 1}},
        ],
        session=session,
    )
    rows = await cursor.to_list()
    return [MonthTotal(total=float(r["total"]), count=int(r["count"])) for r in rows]


# ------------------------------------------------------------------ read side
