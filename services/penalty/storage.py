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
from pymongo.asynchronous.database import AsyncDatabase

from services.penalty.domain.anomaly import MonthTotal
from services.penalty.domain.records import Anomaly, Filing, Flag, Letter
from shared.aggregate import repository
from shared.mongo import Document, list_indexes
from shared.unit_of_work import AggregateRepository, UnitOfWork

FILINGS = "filings"
FLAGS = "flags"
ANOMALIES = "anomalies"
LETTERS = "letters"

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


def filings(uow: UnitOfWork) -> AggregateRepository[Filing]:
    """Filings by case id, through the unit of work's identity map."""
    return repository(uow, FILINGS, Filing)


def flags(uow: UnitOfWork) -> AggregateRepository[Flag]:
    return repository(uow, FLAGS, Flag)


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


# ------------------------------------------------------------------ anomaly aggregation


def month_total(row: Document) -> MonthTotal:
    """One ``$group`` row of fines: its sum and its count."""
    return MonthTotal(total=float(row["total"]), count=int(row["count"]))


async def unit_month_totals(
    uow: UnitOfWork, unit: str, months: Sequence[str]
) -> dict[str, MonthTotal]:
    """Sum of fines and number of penalties of ``unit`` in each of ``months``."""
    coll = await uow.collection(FILINGS)
    cursor = await coll.aggregate(
        [
            {"$match": {"decided": True, "unit": unit, "month": {"$in": list(months)}}},
            {"$group": {"_id": "$month", "total": {"$sum": "$fine"}, "count": {"$sum": 1}}},
        ],
        session=uow.session,
    )
    rows = await cursor.to_list()
    return {row["_id"]: month_total(row) for row in rows}


async def peer_totals(
    uow: UnitOfWork, unit_kind: str, month: str, exclude_unit: str
) -> list[MonthTotal]:
    """Each other unit of the same kind with fines in ``month``: its total and count."""
    coll = await uow.collection(FILINGS)
    cursor = await coll.aggregate(
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
        session=uow.session,
    )
    rows = await cursor.to_list()
    return [month_total(row) for row in rows]
