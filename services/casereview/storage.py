"""The casereview service's collections, indexes and queries (its own database only).

- ``cases``: one per case file (``_id`` = case_id): the validated file, its pre-check
  findings and its review state (status, grade, score, rectification).
- ``campaigns``: one per sampling campaign (双随机), with the population it drew from, the
  seed, the sample and the assignments, so the draw can be re-run and verified.
- ``reviews``: one per sampled case and campaign (``_id`` = ``<campaign>:<case>``): the
  assigned reviewer, the proposed deductions and, once scored, the computed sheet.
- ``rectifications``: one per review with deductions (``_id`` = ``rect:<review>``; ``kind``
  failed or deductions): the order, its
  deadline, the unit's answer and the outcome.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.casereview.domain.records import Campaign, Case, Rectification, Review
from shared.aggregate import repository
from shared.certificates import Certificate, certificate_from_record
from shared.mongo import Document, list_indexes
from shared.unit_of_work import AggregateRepository, UnitOfWork

CASES = "cases"
CAMPAIGNS = "campaigns"
REVIEWS = "reviews"
RECTIFICATIONS = "rectifications"
OFFICERS = "officers"
"""Copy of the inspection service's officer registry (``jiandu.inspection.officer.changed``)."""

Db = AsyncDatabase[Document]

# The order of each paged list; ``list_indexes`` builds the indexes that serve it.
CASES_ORDER = [("closed_on", DESCENDING), ("_id", ASCENDING)]
CAMPAIGNS_ORDER = [("created_at", DESCENDING), ("_id", ASCENDING)]
REVIEWS_ORDER = [("_id", ASCENDING)]
RECTIFICATIONS_ORDER = [("deadline", ASCENDING), ("_id", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    CASES: [
        *list_indexes(CASES_ORDER, ["district", "unit", "status", "grade", "finding_codes"]),
        IndexModel([("closed_on", ASCENDING), ("unit", ASCENDING)], name="by_period"),
        IndexModel([("district", ASCENDING), ("closed_on", DESCENDING)], name="by_district"),
        IndexModel([("unit", ASCENDING), ("closed_on", DESCENDING)], name="by_unit"),
        IndexModel([("status", ASCENDING)], name="by_status"),
        IndexModel([("finding_codes", ASCENDING)], name="by_finding"),
    ],
    CAMPAIGNS: [
        IndexModel([("created_at", DESCENDING)], name="recent"),
        *list_indexes(CAMPAIGNS_ORDER, ["districts", "units"]),  # a district's or unit's scope
    ],
    REVIEWS: [
        *list_indexes(REVIEWS_ORDER, ["district", "unit", "grade"])[1:],  # _id: built in
        IndexModel([("campaign_id", ASCENDING), ("case_id", ASCENDING)], name="by_campaign"),
        IndexModel([("reviewer_id", ASCENDING), ("status", ASCENDING)], name="by_reviewer"),
        IndexModel([("status", ASCENDING), ("closed_on", ASCENDING)], name="by_status"),
        IndexModel([("case_id", ASCENDING)], name="by_case"),
    ],
    RECTIFICATIONS: [
        *list_indexes(RECTIFICATIONS_ORDER, ["status", "unit", "district", "overdue"]),
        IndexModel([("status", ASCENDING), ("deadline", ASCENDING)], name="by_status"),
        IndexModel([("unit", ASCENDING), ("required_at", DESCENDING)], name="by_unit"),
        IndexModel([("district", ASCENDING), ("required_at", DESCENDING)], name="by_district"),
        IndexModel([("case_id", ASCENDING)], name="by_case"),
    ],
}


def cases(uow: UnitOfWork) -> AggregateRepository[Case]:
    """Case files by case id, through the unit of work's identity map."""
    return repository(uow, CASES, Case)


def campaigns(uow: UnitOfWork) -> AggregateRepository[Campaign]:
    return repository(uow, CAMPAIGNS, Campaign)


def reviews(uow: UnitOfWork) -> AggregateRepository[Review]:
    return repository(uow, REVIEWS, Review)


def rectifications(uow: UnitOfWork) -> AggregateRepository[Rectification]:
    return repository(uow, RECTIFICATIONS, Rectification)


def put_officer(uow: UnitOfWork, entry: Document) -> None:
    """Keep the registry entry as the inspection service published it (latest wins)."""
    uow.documents(OFFICERS).put(entry)


async def registry_of(uow: UnitOfWork, officer_ids: list[str]) -> dict[str, Certificate | None]:
    """The registry's certificate of each listed officer it knows (``None``: not certified)."""
    found = await uow.documents(OFFICERS).get_many(officer_ids)
    return {i: certificate_from_record(d) for i, d in found.items()}


async def population(
    uow: UnitOfWork,
    *,
    period_from: str,
    period_to: str,
    units: list[str],
    districts: list[str],
    include_reviewed: bool,
    limit: int,
) -> list[Document]:
    """The cases a campaign draws from, by case id (only id and unit are read)."""
    query: dict[str, Any] = {"closed_on": {"$gte": period_from, "$lte": period_to}}
    if units:
        query["unit"] = {"$in": units}
    if districts:
        query["district"] = {"$in": districts}
    if not include_reviewed:
        query["review_id"] = None
    coll = await uow.collection(CASES)
    cursor = (
        coll.find(query, {"_id": 1, "unit": 1}, session=uow.session)
        .sort("_id", ASCENDING)
        .limit(limit)
    )
    return await cursor.to_list()


async def scored_reviews(db: Db, closed_from: str, closed_to: str) -> list[Document]:
    """Scored reviews of cases closed in the window (report input), minimal fields."""
    cursor = db[REVIEWS].find(
        {"status": "scored", "closed_on": {"$gte": closed_from, "$lte": closed_to}},
        {
            "case_id": 1,
            "unit": 1,
            "district": 1,
            "closed_on": 1,
            "grade": 1,
            "score": 1,
            "defects": 1,
            "failed": 1,
            "self_review": 1,
        },
    )
    return await cursor.to_list()
