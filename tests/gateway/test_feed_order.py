"""The live feed's cursor cannot skip an entry whose transaction committed late.

``timeline.seq`` is a counter taken inside the projection's transaction: while one
transaction holds the next number, another cannot take one (write conflict), so numbers become
visible in commit order. The old cursor (a per-process ``time_ns``) let a transaction that
started first and committed last land below a cursor the feed had already moved past.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from pymongo.errors import PyMongoError

from services.gateway import storage
from services.gateway.domain.access import Role
from services.gateway.settings import GatewaySettings
from tests.gateway.support import bearer
from tests.gateway.test_ingest_api import gateway

pytestmark = pytest.mark.integration


def entry(event_id: str, seq: int) -> dict[str, Any]:
    return {
        "_id": event_id,
        "entity": "complaint",
        "entity_id": event_id,
        "type": "jiandu.hotline.complaint.registered",
        "verb": "registered",
        "time": "2025-03-03T01:00:00Z",
        "district": "310106",
        "unit": "310106-cgzf",
        "status": "received",
        "seq": seq,
    }


async def test_feed_streams_an_event_whose_transaction_committed_late(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    settings = settings_for(GatewaySettings, stream_backlog=0, stream_poll_s=0.05)
    async with gateway(settings) as (svc, client):
        city = bearer(settings, Role.CITY_SUPERVISOR)
        feed = asyncio.create_task(client.get("/v1/stream", params={"max_events": 2}, headers=city))
        db = svc.db
        async with svc.client.start_session() as late:
            await late.start_transaction()
            late_seq = await storage.next_seq(db, late)
            await db[storage.TIMELINE].insert_one(entry("late", late_seq), session=late)

            # Another projection cannot take a number while the late one holds the counter:
            # it fails with a transient write conflict (the runtime runs it again later).
            async with svc.client.start_session() as early:
                await early.start_transaction()
                with pytest.raises(PyMongoError) as conflict:
                    await storage.next_seq(db, early)
                assert conflict.value.has_error_label("TransientTransactionError")
                await early.abort_transaction()
            await late.commit_transaction()

        async def after(uow: Any) -> int:
            seq = await storage.next_seq(uow.db, uow.session)
            await uow.db[storage.TIMELINE].insert_one(entry("after", seq), session=uow.session)
            return seq

        after_seq = await svc.run_in_uow(after)
        response = await asyncio.wait_for(feed, 30)
    streamed = [json.loads(x[6:]) for x in response.text.splitlines() if x.startswith("data: ")]
    assert after_seq == late_seq + 1
    assert [x["id"] for x in streamed] == ["late", "after"]
