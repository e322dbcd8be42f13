"""The gateway's read-side queries: paged lists, one entity and its timeline, the live feed,
the overview KPIs, exports and open data. Routes read through these, never a collection.

Every query takes the caller's data scope (``shared.identity.scope_filter``) and narrows it
with ``within``; the orders are those ``storage.INDEXES`` serves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from services.gateway.domain.export import OPEN_DATA_FIGURES, open_data_rows
from services.gateway.domain.projections import (
    ANOMALY_LEAD_KINDS,
    BOUNCE_LEAD_KIND,
    BOUNCE_LEAD_KINDS,
    ENTITIES,
    disposal_rate,
    feed_key,
    page_entries,
    share,
)
from services.gateway.storage import (
    DEAD_LETTERS,
    ENTITY_ORDER,
    FEED,
    INSPECTION_RATES,
    INSPECTIONS,
    LEADS,
    LEADS_ORDER,
    OFFICERS,
    RECENT_FIRST,
    REVIEWS,
    Db,
)
from shared.city import load_city
from shared.consumer import QUARANTINE
from shared.identity import in_scope, rename_scope, within
from shared.mongo import Document, page

Page = tuple[int, list[Document]]
"""(total, the documents of the asked page)."""

RAW_FIELDS: dict[str, dict[str, Any]] = {
    QUARANTINE: {"raw_b64": 0},
    DEAD_LETTERS: {"headers_b64": 0, "value_b64": 0},
}
"""Projections leaving out the raw input kept for a replay or an inquiry: never listed."""


# ------------------------------------------------------------------ lists and items


LIST_ORDERS: dict[str, list[tuple[str, int]]] = {
    **{kind.collection: ENTITY_ORDER for kind in ENTITIES},
    LEADS: LEADS_ORDER,
    QUARANTINE: RECENT_FIRST,
    DEAD_LETTERS: RECENT_FIRST,
}
"""The order of each paged list (the one ``storage.INDEXES`` serves)."""


async def list_page(
    db: Db,
    collection: str,
    scope: dict[str, Any],
    filters: dict[str, Any],
    *,
    limit: int,
    offset: int,
) -> Page:
    """One page of a list in ``scope``, narrowed by the filters that are set, in the list's
    order, without raw input."""
    query = within(scope, {k: v for k, v in filters.items() if v})
    return await page(
        db,
        collection,
        query,
        sort=LIST_ORDERS[collection],
        limit=limit,
        offset=offset,
        projection=RAW_FIELDS.get(collection),
    )


async def entity(db: Db, collection: str, scope: dict[str, Any], item_id: str) -> Document | None:
    return await db[collection].find_one(within(scope, {"_id": item_id}))


async def timeline_of(db: Db, entity: str, entity_id: str) -> list[Document]:
    """Every event of one entity, in the order it happened (from the feed pages that hold
    any: the ``keys`` index)."""
    pages = await db[FEED].find({"keys": feed_key(entity, entity_id)}).to_list()
    wanted = (entity, entity_id)
    mine = page_entries(pages, lambda e: (e.get("entity"), e.get("entity_id")) == wanted)
    return sorted(mine, key=lambda e: (e.get("time") is not None, e.get("time") or 0, e["seq"]))


async def dead_letter(db: Db, scope: dict[str, Any], letter_id: str) -> Document | None:
    """One dead letter with its raw record (for a replay)."""
    return await db[DEAD_LETTERS].find_one(within(scope, {"_id": letter_id}))


# ------------------------------------------------------------------ live feed


PAGE_SCOPE = {"district": "districts", "unit": "units"}
"""The scope's fields as a feed page lists them (a page holds entries of several units)."""


async def feed_backlog(db: Db, scope: dict[str, Any], size: int) -> list[Document]:
    """The last ``size`` feed entries in ``scope``, oldest first (``size`` 0: every entry, as
    the feed has always sent it)."""
    latest: list[Document] = []
    pages = db[FEED].find(rename_scope(scope, PAGE_SCOPE)).sort("last", DESCENDING)
    async for feed_page in pages:  # newest pages first, until enough entries in scope
        latest.extend(reversed(page_entries([feed_page], lambda e: in_scope(scope, e))))
        if size and len(latest) >= size:
            break
    return list(reversed(latest[:size] if size else latest))


async def feed_after(db: Db, scope: dict[str, Any], last: int, size: int = 200) -> list[Document]:
    """Feed entries in ``scope`` after ``seq = last``, in feed order (at most ``size``)."""
    query = within(rename_scope(scope, PAGE_SCOPE), {"last": {"$gt": last}})
    pages = await db[FEED].find(query).sort("last", ASCENDING).limit(size).to_list()
    return page_entries(pages, lambda e: int(e["seq"]) > last and in_scope(scope, e))[:size]


async def feed_size(db: Db) -> int:
    """How many entries the feed holds (every page counts its own)."""
    return sum([int(p.get("count", 0)) async for p in db[FEED].find({}, {"count": 1})])


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
    # 推诿: complaints the hotline's bounce rule found (one BOUNCE lead per complaint), not
    # every complaint returned once
    "bounced_complaints": (LEADS, {"kind": BOUNCE_LEAD_KIND, "subject_type": "complaint"}),
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


# ------------------------------------------------------------------ inspections (涉企检查)


async def inspection_summary(
    db: Db, scope: dict[str, Any], since: datetime, top: int
) -> list[Document]:
    """Per district in ``scope``: inspections since ``since``, 亮码率, 未备案 and 无证执法
    counts, and the ``top`` enterprises by visits (a joint inspection, 综合查一次, counts
    once) with how many units inspected each."""
    match = {"$match": within(scope, {"at": {"$gte": since}})}
    totals: dict[str, Document] = {}
    async for row in await db[INSPECTIONS].aggregate(
        [
            match,
            {
                "$group": {
                    "_id": "$district",
                    "inspections": {"$sum": 1},
                    "code_scanned": {"$sum": {"$cond": ["$code_scanned", 1, 0]}},
                    "unplanned": {"$sum": {"$cond": ["$planned", 0, 1]}},
                    "uncertified": {"$sum": {"$cond": ["$uncertified", 1, 0]}},
                }
            },
        ]
    ):
        if row["_id"] is not None:
            totals[str(row["_id"])] = row
    firms: dict[str, list[Document]] = {}
    async for row in await db[INSPECTIONS].aggregate(
        [
            match,
            {
                "$group": {
                    "_id": {
                        "district": "$district",
                        "enterprise": "$enterprise",
                        "visit": {"$ifNull": ["$joint_id", "$_id"]},
                    },
                    "inspections": {"$sum": 1},
                    "units": {"$addToSet": "$unit"},
                }
            },
            {
                "$group": {
                    "_id": {"district": "$_id.district", "enterprise": "$_id.enterprise"},
                    "visits": {"$sum": 1},
                    "inspections": {"$sum": "$inspections"},
                    "units": {"$push": "$units"},
                }
            },
            {"$sort": {"visits": -1, "inspections": -1, "_id.enterprise": 1}},
        ]
    ):
        district = str(row["_id"]["district"])
        ranked = firms.setdefault(district, [])
        if len(ranked) < top:
            ranked.append(
                {
                    "enterprise": row["_id"]["enterprise"],
                    "visits": row["visits"],
                    "inspections": row["inspections"],
                    "units": len({u for group in row["units"] for u in group}),
                }
            )
    names = {d.code: d.name for d in load_city().districts}
    rows = []
    for code in sorted(totals):
        t = totals[code]
        rows.append(
            {
                "district": code,
                "name": names.get(code, code),
                "inspections": t["inspections"],
                "code_scanned": t["code_scanned"],
                "code_rate": share(t["code_scanned"], t["inspections"]),
                "unplanned": t["unplanned"],
                "uncertified": t["uncertified"],
                "top_enterprises": firms.get(code, []),
            }
        )
    return rows


async def _tally(
    db: Db, collection: str, scope: dict[str, Any], flag: str
) -> dict[tuple[str, str | None], tuple[int, int]]:
    """(district, unit) → (documents, those with ``flag`` true) in ``scope``."""
    pipeline: list[dict[str, Any]] = [
        {"$match": scope},
        {
            "$group": {
                "_id": {"d": "$district", "u": "$unit"},
                "n": {"$sum": 1},
                "k": {"$sum": {"$cond": [f"${flag}", 1, 0]}},
            }
        },
    ]
    out: dict[tuple[str, str | None], tuple[int, int]] = {}
    async for row in await db[collection].aggregate(pipeline):
        key = row["_id"] or {}
        if key.get("d") is not None:
            out[(str(key["d"]), key.get("u"))] = (int(row["n"]), int(row["k"]))
    return out


async def inspection_rates(db: Db, scope: dict[str, Any]) -> list[Document]:
    """持证率 (officers with a valid certificate over the registry, unregistered officers seen
    on inspections included) and 被纠错率 (reviews that corrected the act over all reviews) per
    unit and per district in ``scope``, with how often the inspection service found each over
    its line (``crossings``, from its ``rate.crossed`` events)."""
    officers = await _tally(db, OFFICERS, scope, "valid")
    reviews = await _tally(db, REVIEWS, scope, "corrected")
    crossings: dict[tuple[str, str], dict[str, int]] = {}
    for doc in await db[INSPECTION_RATES].find(scope).sort(ENTITY_ORDER).to_list():
        snap = doc.get("snapshot") or {}
        key = (str(snap.get("scope")), str(snap.get("key")))
        crossings.setdefault(key, {})[str(snap.get("metric"))] = int(snap.get("crossings") or 0)
    units: dict[tuple[str, str], list[int]] = {}
    for (district, unit), (n, k) in officers.items():
        row = units.setdefault((district, unit or ""), [0, 0, 0, 0])
        row[0], row[1] = row[0] + n, row[1] + k
    for (district, unit), (n, k) in reviews.items():
        row = units.setdefault((district, unit or ""), [0, 0, 0, 0])
        row[2], row[3] = row[2] + n, row[3] + k
    districts: dict[str, list[int]] = {}
    for (district, _), counts in units.items():
        acc = districts.setdefault(district, [0, 0, 0, 0])
        for i, v in enumerate(counts):
            acc[i] += v

    def rate_row(scope_kind: str, district: str, unit: str | None, c: list[int]) -> Document:
        key = unit if scope_kind == "unit" else district
        return {
            "scope": scope_kind,
            "district": district,
            "unit": unit,
            "officers": c[0],
            "certified": c[1],
            "certification_rate": share(c[1], c[0]),
            "reviews": c[2],
            "corrected": c[3],
            "correction_rate": share(c[3], c[2]),
            "crossings": crossings.get((scope_kind, str(key)), {}),
        }

    rows = []
    unit_scoped = "unit" in scope  # a unit sees its own figures, not its district's
    for district in sorted(districts):
        if not unit_scoped:
            rows.append(rate_row("district", district, None, districts[district]))
        for (d, unit), counts in sorted(units.items()):
            if d == district and unit:
                rows.append(rate_row("unit", district, unit, counts))
    return rows


# ------------------------------------------------------------------ export and open data

EXPORT_SOURCES: dict[str, tuple[str, list[tuple[str, int]]]] = {
    "complaints": ("complaints", ENTITY_ORDER),
    "cases": ("cases", ENTITY_ORDER),
    "filings": ("filings", ENTITY_ORDER),
    "leads": (LEADS, LEADS_ORDER),
}
"""Exported entity → (collection, order): the same indexed order as its paged list."""


async def export_docs(db: Db, entity: str, scope: dict[str, Any], max_rows: int) -> list[Document]:
    """The caller's rows of one entity, newest first, at most ``max_rows``."""
    collection, order = EXPORT_SOURCES[entity]
    return await db[collection].find(scope).sort(order).limit(max_rows).to_list()


OPEN_DATA_METRICS: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: OVERVIEW_METRICS[name] for name in OPEN_DATA_FIGURES if name in OVERVIEW_METRICS},
    "reviewed_cases": ("cases", {"grade": {"$gt": ""}}),
}
"""Open-data figure → (collection, filter): counted per district and month, city-wide."""


async def _count_by_district_month(
    db: Db, collection: str, match: dict[str, Any]
) -> dict[tuple[str, str], int]:
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {"$group": {"_id": {"d": "$district", "m": "$month"}, "n": {"$sum": 1}}},
    ]
    out: dict[tuple[str, str], int] = {}
    async for row in await db[collection].aggregate(pipeline):
        key = row["_id"] or {}
        if key.get("d") is not None and key.get("m") is not None:
            out[(str(key["d"]), str(key["m"]))] = int(row["n"])
    return out


async def open_data(db: Db) -> list[Document]:
    """Anonymous aggregate figures per district and month (no personal data, no ids)."""
    counts = {
        name: await _count_by_district_month(db, coll, match)
        for name, (coll, match) in OPEN_DATA_METRICS.items()
    }
    names = {d.code: d.name for d in load_city().districts}
    return open_data_rows(counts, names)
