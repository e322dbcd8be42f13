"""The feed (事件流) on pages: one document per projection transaction, not one per event.

Readers see the same feed as before: every entry once, in feed order (``seq``), only the
caller's scope, and each entity's timeline in the order its events happened. A database an
earlier version wrote (one ``timeline`` document per event) is folded onto pages at start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from services.gateway import queries, storage
from services.gateway.domain.access import Role
from services.gateway.domain.projections import add_to_page, new_feed_page, page_entries
from services.gateway.main import build
from services.gateway.settings import GatewaySettings
from shared.mongo import make_client
from shared.topics import HOTLINE_EVENTS
from shared.unit_of_work import UnitOfWork
from tests.gateway.support import T0, bearer, complaint_event
from tests.gateway.test_ingest_api import gateway
from tests.helpers import eventually

HOME, AWAY = "310106", "310104"


def entry(n: int, district: str = HOME, entity_id: str | None = None) -> dict[str, Any]:
    return {
        "_id": f"ev-{n}",
        "entity": "complaint",
        "entity_id": entity_id or f"WO-{n}",
        "type": "jiandu.hotline.complaint.routed",
        "verb": "routed",
        "time": T0 + timedelta(minutes=n),
        "district": district,
        "unit": f"{district}-cgzf",
        "status": "dispatched",
    }


# ------------------------------------------------------------------ pure page rules


def test_a_page_lists_its_range_entities_districts_and_units_once() -> None:
    page = new_feed_page("p")
    for seq, item in ((7, entry(1)), (8, entry(2, AWAY)), (9, entry(3, HOME, "WO-1"))):
        add_to_page(page, {**item, "seq": seq})
    assert (page["first"], page["last"], page["count"]) == (7, 9, 3)
    assert page["keys"] == ["complaint/WO-1", "complaint/WO-2"]
    assert page["districts"] == [HOME, AWAY]
    assert page["units"] == [f"{HOME}-cgzf", f"{AWAY}-cgzf"]


def test_page_entries_keeps_what_is_asked_in_feed_order_across_pages() -> None:
    older, newer = new_feed_page("a"), new_feed_page("b")
    for seq in (1, 2):
        add_to_page(older, {**entry(seq, AWAY if seq == 2 else HOME), "seq": seq})
    for seq in (3, 4):
        add_to_page(newer, {**entry(seq), "seq": seq})
    kept = page_entries([newer, older], lambda e: e["district"] == HOME)
    assert [e["seq"] for e in kept] == [1, 3, 4]


# ------------------------------------------------------------------ on the real database


@pytest.mark.integration
async def test_one_transaction_writes_one_page_numbered_in_order(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    async with build(settings_for(GatewaySettings)).running() as svc:

        async def project(uow: UnitOfWork) -> list[int]:
            return [await storage.append_to_feed(uow, entry(n)) for n in range(1, 4)]

        async def long_batch(uow: UnitOfWork) -> list[int]:
            return [await storage.append_to_feed(uow, entry(n), most=2) for n in range(5, 10)]

        first = await svc.run_in_uow(project)
        second = await svc.run_in_uow(project)
        pages = await svc.db[storage.FEED].find().sort("last", 1).to_list()
        third = await svc.run_in_uow(long_batch)
        long_pages = await svc.db[storage.FEED].find({"first": {"$gte": third[0]}}).to_list()
    assert second == [first[-1] + 1, first[-1] + 2, first[-1] + 3]
    assert [(p["first"], p["last"], p["count"]) for p in pages] == [
        (first[0], first[-1], 3),
        (second[0], second[-1], 3),
    ]
    # a page never grows past its limit: a long batch fills several, in order
    assert sorted(p["count"] for p in long_pages) == [1, 2, 2]
    assert sorted(e["seq"] for p in long_pages for e in p["entries"]) == third


@pytest.mark.integration
async def test_the_feed_reads_across_pages_in_scope_and_order(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    async with build(settings_for(GatewaySettings)).running() as svc:
        for page_no, seqs in enumerate(((1, 2, 3), (4, 5), (6, 7, 8))):
            page = new_feed_page(f"p{page_no}")
            for seq in seqs:
                add_to_page(page, {**entry(seq, AWAY if seq % 3 == 0 else HOME), "seq": seq})
            await svc.db[storage.FEED].insert_one(page)
        home: dict[str, Any] = {"district": HOME}
        city: dict[str, Any] = {}

        after = await queries.feed_after(svc.db, home, last=2)
        backlog = await queries.feed_backlog(svc.db, home, size=3)
        everything = await queries.feed_backlog(svc.db, city, size=0)
        limited = await queries.feed_after(svc.db, city, last=0, size=4)
        unit = await queries.feed_after(svc.db, {"unit": f"{AWAY}-cgzf"}, last=0)
    assert [e["seq"] for e in after] == [4, 5, 7, 8]
    assert [e["seq"] for e in backlog] == [5, 7, 8]
    assert [e["seq"] for e in everything] == list(range(1, 9))
    assert [e["seq"] for e in limited] == [1, 2, 3, 4]
    assert [e["seq"] for e in unit] == [3, 6]


@pytest.mark.integration
async def test_an_entity_timeline_gathers_its_events_from_every_page(
    settings_for: Callable[..., GatewaySettings], publisher: Any
) -> None:
    """Events of one work order projected in separate batches land on separate pages; its
    timeline has them all, in the order they happened, and no other entity's."""
    settings = settings_for(GatewaySettings)
    async with gateway(settings) as (svc, client):
        steps = [("registered", "received"), ("routed", "dispatched"), ("acknowledged", "accepted")]
        for i, (verb, status) in enumerate(steps):
            event = complaint_event("WO-T", verb, status=status, at=T0 + timedelta(hours=i))
            await publisher.event(svc.topic(HOTLINE_EVENTS), event)
            other = complaint_event(f"WO-X{i}", "registered", at=T0 + timedelta(hours=i))
            await publisher.event(svc.topic(HOTLINE_EVENTS), other)

            async def projected(n: int = 2 * (i + 1)) -> bool:
                return await queries.feed_size(svc.db) == n

            await eventually(projected)  # each step its own batch, so its own page
        pages = await svc.db[storage.FEED].count_documents({"keys": "complaint/WO-T"})
        city = bearer(settings, Role.CITY_SUPERVISOR)
        detail = (await client.get("/v1/complaints/WO-T", headers=city)).json()
    assert pages == len(steps)
    assert [t["verb"] for t in detail["timeline"]] == [verb for verb, _ in steps]


@pytest.mark.integration
async def test_a_per_event_timeline_of_an_earlier_version_is_folded_onto_pages(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    settings = settings_for(GatewaySettings, stream_backlog=0)
    legacy = [{**entry(n, AWAY if n == 2 else HOME, "WO-L"), "seq": 100 + n} for n in range(5)]
    direct = make_client(settings.mongo_uri, "legacy-writer")
    db = direct[settings.database]
    try:
        await db[storage.LEGACY_TIMELINE].insert_many(legacy)
        # a start with smaller chunks shows a fold over several transactions
        assert await storage.fold_legacy_timeline(db, chunk=2) == 5
        assert storage.LEGACY_TIMELINE not in await db.list_collection_names()
        await db[storage.LEGACY_TIMELINE].insert_many([{**entry(9, HOME, "WO-L"), "seq": 109}])
    finally:
        await direct.close()
    async with gateway(settings) as (svc, client):  # the start folds what is left
        pages = await svc.db[storage.FEED].find().sort("last", 1).to_list()
        timeline = await queries.timeline_of(svc.db, "complaint", "WO-L")
        collections = await svc.db.list_collection_names()

        async def numbered(uow: UnitOfWork) -> int:
            return await storage.append_to_feed(uow, entry(10))

        next_seq = await svc.run_in_uow(numbered)
        district = bearer(settings, Role.DISTRICT_SUPERVISOR, district=AWAY)
        response = await client.get("/v1/stream", params={"max_events": 1}, headers=district)
    assert [p["count"] for p in pages] == [2, 2, 1, 1]
    assert [e["seq"] for e in timeline] == [100, 101, 102, 103, 104, 109]
    assert storage.LEGACY_TIMELINE not in collections
    assert next_seq == 110  # numbering goes on above the folded entries
    streamed = [json.loads(x[6:]) for x in response.text.splitlines() if x.startswith("data: ")]
    assert [x["id"] for x in streamed] == ["ev-2"]  # the district's one folded entry


@pytest.mark.integration
async def test_two_replicas_folding_at_once_move_every_entry_once(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    """Two replicas upgraded together both start the fold: each chunk lands on ONE page."""
    settings = settings_for(GatewaySettings)
    legacy = [{**entry(n, HOME, f"WO-{n % 7}"), "seq": n} for n in range(1, 61)]
    first = make_client(settings.mongo_uri, "fold-a")
    second = make_client(settings.mongo_uri, "fold-b")
    try:
        await first[settings.database][storage.LEGACY_TIMELINE].insert_many(legacy)
        moved = await asyncio.gather(
            storage.fold_legacy_timeline(first[settings.database], chunk=7),
            storage.fold_legacy_timeline(second[settings.database], chunk=7),
        )
        pages = await first[settings.database][storage.FEED].find().to_list()
    finally:
        await first.close()
        await second.close()
    seqs = sorted(e["seq"] for p in pages for e in p["entries"])
    assert sum(moved) == len(legacy)
    assert seqs == list(range(1, 61))  # every entry once, none twice
