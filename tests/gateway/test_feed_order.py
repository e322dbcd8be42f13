"""The live feed's cursor cannot skip an entry whose transaction committed late.

The feed's ``seq`` is a counter taken inside the projection's transaction: while one
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
from shared.unit_of_work import UnitOfWork
from tests.gateway.support import bearer
from tests.gateway.test_ingest_api import gateway

pytestmark = pytest.mark.integration


def entry(event_id: str) -> dict[str, Any]:
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
    }


async def test_feed_streams_an_event_whose_transaction_committed_late(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    settings = settings_for(GatewaySettings, stream_backlog=0, stream_poll_s=0.05)
    async with gateway(settings) as (svc, client):
        city = bearer(settings, Role.CITY_SUPERVISOR)
        feed = asyncio.create_task(client.get("/v1/stream", params={"max_events": 2}, headers=city))
        async with svc.client.start_session() as late_session:
            await late_session.start_transaction()
            late = UnitOfWork(svc.db, late_session, svc.clock, svc.source)
            late_seq = await storage.append_to_feed(late, entry("late"))
            await late.flush()  # the counter is written: this transaction holds it

            # Another projection cannot take a number while the late one holds the counter:
            # writing it fails with a transient write conflict (the runtime runs it again).
            async with svc.client.start_session() as early_session:
                await early_session.start_transaction()
                early = UnitOfWork(svc.db, early_session, svc.clock, svc.source)
                assert await storage.next_seq(early) == late_seq  # what its snapshot says
                with pytest.raises(PyMongoError) as conflict:
                    await early.flush()
                assert conflict.value.has_error_label("TransientTransactionError")
                await early_session.abort_transaction()
            await late_session.commit_transaction()

        async def after(uow: UnitOfWork) -> int:
            return await storage.append_to_feed(uow, entry("after"))

        after_seq = await svc.run_in_uow(after)
        response = await asyncio.wait_for(feed, 30)
    streamed = [json.loads(x[6:]) for x in response.text.splitlines() if x.startswith("data: ")]
    assert after_seq == late_seq + 1
    assert [x["id"] for x in streamed] == ["late", "after"]


def test_every_consumer_that_numbers_the_feed_claims_its_counter_first() -> None:
    """Two replicas' projection batches take turns on the counter instead of one of them
    losing its whole batch at commit (``tests/platform/test_batch_claims.py``)."""
    from services.gateway.main import build
    from shared.topics import AUDIT_EVENTS, INGEST_QUARANTINE

    svc = build(GatewaySettings())
    claim = (storage.COUNTERS, storage.FEED_COUNTER)
    numbering = {
        n: c
        for n, c in svc.consumers.items()
        if not n.endswith((AUDIT_EVENTS.name, INGEST_QUARANTINE.name))
    }
    assert numbering and all(c.claims == (claim,) for c in numbering.values())
    others = [c for n, c in svc.consumers.items() if n not in numbering]
    assert len(others) == 2 and all(c.claims == () for c in others)
