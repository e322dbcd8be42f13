"""A batch claims its contended document first, so replicas take turns instead of wasting work.

The gateway's feed counter is written by every projection batch. Written at commit (as the
identity map writes), a second replica's batch ran all its handlers and lost at commit, then
was split in halves that lost again: with two replicas the gateway wrote twice the documents
per event (``make bench``). ``EventConsumer.claims`` writes the document first
(``UnitOfWork.claim``): the server refuses the second writer at its first statement, and the
batch waits and runs again whole (``ClaimHeld``, ``CLAIM_WAITS``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared.batching import ClaimHeld
from shared.consumer import INBOX, EventConsumer, EventHandler, apply_batch
from shared.envelope import Envelope
from shared.service import Service
from shared.settings import ServiceSettings
from shared.unit_of_work import UnitOfWork
from tests.helpers import eventually, thing_records

pytestmark = pytest.mark.integration

COUNTERS = "counters"
COUNTER = "feed"


class ClaimSettings(ServiceSettings):
    service_name: str = "claims"


def counter_consumer(svc: Service, handler: EventHandler) -> EventConsumer:
    """A consumer whose every batch claims the counter first."""
    return EventConsumer(
        svc, "claims.t", "t", {"test.thing": handler}, claims=[(COUNTERS, COUNTER)]
    )


async def test_a_batch_waits_for_a_held_claim_and_then_runs_whole_once(
    settings_for: Callable[..., Any],
) -> None:
    svc = Service(settings_for(ClaimSettings))
    released = asyncio.Event()
    ran: list[tuple[str, bool]] = []  # (event id, whether the holder had committed)

    async def handler(event: Envelope, uow: UnitOfWork) -> None:
        ran.append((event.id, released.is_set()))
        counters = uow.documents(COUNTERS)
        doc = await counters.get(COUNTER) or {"_id": COUNTER}
        doc["seq"] = int(doc.get("seq", 0)) + 1
        counters.put(doc)

    consumer = counter_consumer(svc, handler)
    async with svc.running():
        items = [consumer.decode(i, r) for i, r in enumerate(thing_records(6))]
        async with svc.client.start_session() as holder:
            await holder.start_transaction()
            held = UnitOfWork(svc.db, holder, svc.clock, svc.source, instance="other-replica")
            await held.claim(COUNTERS, COUNTER)  # another replica's batch, not committed yet

            batch = asyncio.create_task(apply_batch(svc, items))

            # the batch keeps trying while the claim is held (each try stops at the claim)
            async def tried_thrice() -> bool:
                return consumer.transactions >= 3

            await eventually(tried_thrice, timeout=10)
            assert not batch.done()
            assert ran == [], "no handler ran while another transaction held the claim"

            # A write in the same transaction after the claim is still possible for the holder.
            counters = held.documents(COUNTERS)
            doc = await counters.get(COUNTER)
            assert doc is not None and doc["claimed_by"] == "other-replica"
            counters.put({**doc, "seq": 100})
            await held.flush()
            released.set()
            await holder.commit_transaction()

        outcomes = await asyncio.wait_for(batch, 30)
        inbox = await svc.db[INBOX].find({}).to_list()
        counter = await svc.db[COUNTERS].find_one({"_id": COUNTER})

    assert [o.status for o in outcomes] == ["processed"] * 6
    assert ran == [(f"e-{i}", True) for i in range(6)], "each handler ran once, after the commit"
    assert len(inbox) == 1 and inbox[0]["ids"] == [f"claims.t:e-{i}" for i in range(6)], (
        "the batch committed whole, not in halves"
    )
    assert counter is not None and counter["seq"] == 106, "it continued from the holder's commit"
    assert counter["claims"] == 2  # the holder's claim and the batch's successful one


async def test_a_claim_held_past_its_waits_gives_the_batch_back(
    settings_for: Callable[..., Any],
) -> None:
    """Not the records' fault: nothing is dead-lettered; the batch is delivered again."""
    svc = Service(settings_for(ClaimSettings, batch_claim_attempts=2))
    ran: list[str] = []

    async def handler(event: Envelope, uow: UnitOfWork) -> None:
        ran.append(event.id)

    consumer = counter_consumer(svc, handler)
    async with svc.running():
        items = [consumer.decode(i, r) for i, r in enumerate(thing_records(3))]
        async with svc.client.start_session() as holder:
            await holder.start_transaction()
            await UnitOfWork(svc.db, holder, svc.clock, svc.source).claim(COUNTERS, COUNTER)
            with pytest.raises(ClaimHeld):
                await apply_batch(svc, items)
            await holder.abort_transaction()
        dead = await svc.db["quarantine"].count_documents({})
    assert ran == []
    assert dead == 0
