"""The inspection service's collections, indexes and queries (its own database only).

- ``plans``: one per filed inspection plan (``_id`` = plan_id); days as ISO strings.
- ``inspections``: one per inspection (``_id`` = inspection_id) with its findings.
- ``officers``: the officer registry (``_id`` = officer_id): certificate and its status;
  officers seen on inspections without a certificate are kept too (``registered`` false), so
  they count in the 持证率.
- ``reviews``: 行政复议 / 行政诉讼 / 检察建议 outcomes (``_id`` = review_id).
- ``rates``: 持证率 and 被纠错率 per unit and per district (``_id`` = ``<metric>:<scope>:<key>``).
- ``flags``: one per finding (``_id`` = ``<kind>:<subject>``), for the supervisors' list.

Handlers reach every collection through the functions here, which take the unit of work:
documents by id through its identity map, documents by a field (a unit's plans, an
enterprise's visits, the officers and reviews of a unit or district) through batch look-ups
that the consumer prefetches and that see the batch's own writes: no query per event.
"""

from __future__ import annotations

import datetime as dt

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.inspection.domain.rules import Plan, Visit
from shared.certificates import Certificate, certificate_from_record
from shared.clock import utc
from shared.mongo import Document, list_indexes
from shared.unit_of_work import Lookup, UnitOfWork

Db = AsyncDatabase[Document]

PLANS = "plans"
INSPECTIONS = "inspections"
OFFICERS = "officers"
REVIEWS = "reviews"
RATES = "rates"
FLAGS = "flags"

PLANS_ORDER = [("filed_at", DESCENDING), ("_id", ASCENDING)]
INSPECTIONS_ORDER = [("at", DESCENDING), ("_id", ASCENDING)]
OFFICERS_ORDER = [("unit", ASCENDING), ("_id", ASCENDING)]
REVIEWS_ORDER = [("decided_at", DESCENDING), ("_id", ASCENDING)]
RATES_ORDER = [("metric", ASCENDING), ("_id", ASCENDING)]
FLAGS_ORDER = [("raised_at", DESCENDING), ("_id", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    PLANS: [
        *list_indexes(PLANS_ORDER, ["district", "unit"]),
    ],
    INSPECTIONS: [
        # ``list_enterprise`` also serves the batch look-up of an enterprise's visits
        *list_indexes(
            INSPECTIONS_ORDER,
            ["district", "unit", "enterprise", "planned", "code_scanned", "flags"],
        ),
    ],
    OFFICERS: [
        *list_indexes(OFFICERS_ORDER, ["district", "unit", "status"]),
    ],
    REVIEWS: [
        *list_indexes(REVIEWS_ORDER, ["district", "unit", "outcome"]),
    ],
    RATES: [
        *list_indexes(RATES_ORDER, ["district", "unit", "scope", "breached"]),
    ],
    FLAGS: [
        *list_indexes(FLAGS_ORDER, ["kind", "district", "unit"]),
        IndexModel([("inspection_id", ASCENDING)], name="by_inspection"),
    ],
}


# ------------------------------------------------------------------ whole documents


async def get(uow: UnitOfWork, collection: str, doc_id: str) -> Document | None:
    return await uow.documents(collection).get(doc_id)


def put(uow: UnitOfWork, collection: str, doc: Document) -> None:
    uow.documents(collection).put(doc)


async def add_once(uow: UnitOfWork, collection: str, doc: Document) -> bool:
    """Insert a document once; returns False when it was already there."""
    docs = uow.documents(collection)
    if await docs.get(doc["_id"]) is not None:
        return False
    docs.add(doc)
    return True


async def add_flag(uow: UnitOfWork, flag: Document) -> bool:
    """Insert a flag once; returns False when it was already there (nothing to announce)."""
    return await add_once(uow, FLAGS, flag)


# ------------------------------------------------------------------ rule inputs


def plan_of(doc: Document) -> Plan:
    return Plan(
        plan_id=doc["_id"],
        unit=doc["unit"],
        period_start=dt.date.fromisoformat(doc["period_start"]),
        period_end=dt.date.fromisoformat(doc["period_end"]),
        enterprises=doc.get("enterprises") or [],
        sectors=doc.get("sectors") or [],
        double_random=bool(doc.get("double_random")),
        filed_at=utc(doc["filed_at"]) if doc.get("filed_at") else None,
    )


PLANS_OF_UNIT = Lookup(PLANS, "unit")
INSPECTIONS_OF_ENTERPRISE = Lookup(INSPECTIONS, "enterprise")
OFFICERS_BY: dict[str, Lookup] = {scope: Lookup(OFFICERS, scope) for scope in ("unit", "district")}
REVIEWS_BY: dict[str, Lookup] = {scope: Lookup(REVIEWS, scope) for scope in ("unit", "district")}
"""Look-ups by a field, prefetched for a whole batch (``handlers.prefetch``) and served with
the batch's own writes (``uow.lookup``): no query per event."""


async def plans_of_unit(uow: UnitOfWork, unit: str) -> list[Plan]:
    """Every plan the unit filed (a unit files a handful a year)."""
    return [plan_of(plan) for plan in await uow.lookup(PLANS_OF_UNIT).find(unit)]


async def visits_of(
    uow: UnitOfWork, district: str, enterprise: str, since: dt.datetime
) -> list[Visit]:
    """The enterprise's inspections in the district from ``since`` on."""
    return [
        Visit(
            inspection_id=inspection["_id"],
            unit=inspection["unit"],
            at=utc(inspection["at"]),
            joint_id=inspection.get("joint_id"),
        )
        for inspection in await uow.lookup(INSPECTIONS_OF_ENTERPRISE).find(enterprise)
        if inspection["district"] == district and utc(inspection["at"]) > since
    ]


def certificate_of(doc: Document | None) -> Certificate | None:
    """The registry entry as a certificate; ``None`` for an officer never certified."""
    return certificate_from_record(doc) if doc is not None else None


async def officers_where(uow: UnitOfWork, scope: str, key: str) -> list[Document]:
    """The officers of a unit (``scope="unit"``) or of a district (``"district"``)."""
    return await uow.lookup(OFFICERS_BY[scope]).find(key)


async def add_unregistered_officer(uow: UnitOfWork, doc: Document) -> bool:
    """An officer seen on an inspection without a certificate: counted, not certified."""
    return await add_once(uow, OFFICERS, doc)


async def outcomes_where(uow: UnitOfWork, scope: str, key: str) -> list[str]:
    """Outcomes of every review of a unit's (district's) acts."""
    return [review["outcome"] for review in await uow.lookup(REVIEWS_BY[scope]).find(key)]


def rate_id(metric: str, scope: str, key: str) -> str:
    return f"{metric}:{scope}:{key}"


# ------------------------------------------------------------------ read side


async def district_summary(
    db: Db, district: str, since: dt.datetime, top: int
) -> tuple[Document, list[Document]]:
    """Totals of the district's inspections since ``since`` and the most inspected firms."""
    match = {"$match": {"district": district, "at": {"$gte": since}}}
    cursor = await db[INSPECTIONS].aggregate(
        [
            match,
            {
                "$group": {
                    "_id": None,
                    "inspections": {"$sum": 1},
                    "code_scanned": {"$sum": {"$cond": ["$code_scanned", 1, 0]}},
                    "unplanned": {"$sum": {"$cond": ["$planned", 0, 1]}},
                    "uncertified": {
                        "$sum": {"$cond": [{"$gt": [{"$size": "$uncertified_officers"}, 0]}, 1, 0]}
                    },
                }
            },
        ]
    )
    totals = (await cursor.to_list()) or [{}]
    cursor = await db[INSPECTIONS].aggregate(
        [
            match,
            {
                "$group": {
                    "_id": {
                        "enterprise": "$enterprise",
                        "visit": {"$ifNull": ["$joint_id", "$_id"]},
                    },
                    "inspections": {"$sum": 1},
                    "units": {"$addToSet": "$unit"},
                }
            },
            {
                "$group": {
                    "_id": "$_id.enterprise",
                    "visits": {"$sum": 1},
                    "inspections": {"$sum": "$inspections"},
                    "units": {"$push": "$units"},
                }
            },
            {"$sort": {"visits": -1, "inspections": -1, "_id": 1}},
            {"$limit": top},
        ]
    )
    rows = await cursor.to_list()
    enterprises = [
        {
            "enterprise": r["_id"],
            "visits": r["visits"],
            "inspections": r["inspections"],
            "units": len({u for group in r["units"] for u in group}),
        }
        for r in rows
    ]
    return totals[0], enterprises
