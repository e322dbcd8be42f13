"""``Service.run_in_uow``: one transaction per try; write conflicts are retried, others not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import OperationFailure

from shared.leases import Lease
from shared.mongo import make_client
from shared.service import Service
from shared.settings import ServiceSettings
from shared.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration


class UowSettings(ServiceSettings):
    service_name: str = "uow"


def _conflict() -> OperationFailure:
    return OperationFailure(
        "WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]}
    )


async def test_write_conflict_reruns_the_whole_work_in_a_fresh_transaction(
    settings_for: Callable[..., Any],
) -> None:
    svc = Service(settings_for(UowSettings, transaction_attempts=4))
    tries: list[int] = []

    async def work(uow: UnitOfWork) -> str:
        tries.append(len(tries) + 1)
        marks = await uow.collection("marks")
        await marks.insert_one({"try": len(tries)}, session=uow.session)
        if len(tries) < 3:
            raise _conflict()
        return "done"

    async with svc.running():
        assert await svc.run_in_uow(work) == "done"
        marks = await svc.db["marks"].find({}, {"_id": 0}).to_list()
    assert tries == [1, 2, 3]
    assert marks == [{"try": 3}], "the aborted tries left nothing behind"


async def test_other_errors_and_exhausted_conflicts_propagate(
    settings_for: Callable[..., Any],
) -> None:
    svc = Service(settings_for(UowSettings, transaction_attempts=2))
    calls = {"conflict": 0, "other": 0}

    async def always_conflicts(uow: UnitOfWork) -> None:
        calls["conflict"] += 1
        raise _conflict()

    async def fails(uow: UnitOfWork) -> None:
        calls["other"] += 1
        raise OperationFailure("duplicate key", code=11000)

    async with svc.running():
        with pytest.raises(OperationFailure, match="WriteConflict"):
            await svc.run_in_uow(always_conflicts)
        with pytest.raises(OperationFailure, match="duplicate key"):
            await svc.run_in_uow(fails)
    assert calls == {"conflict": 2, "other": 1}


async def test_a_stopped_replica_hands_the_outbox_lease_over_at_once(
    settings_for: Callable[..., Any],
) -> None:
    svc = Service(settings_for(UowSettings, lease_s=3600.0))
    async with svc.running():
        assert svc.relay is not None
        await svc.relay.drain_once()  # holds the relay lease for an hour
        assert not await Lease(svc.db, "outbox-relay", "successor", 60).acquire()
    # stop() flushed the outbox (taking the lease again) and then released it
    client = make_client(svc.settings.mongo_uri, "lease-check")
    try:
        db = client[svc.settings.database]
        assert await Lease(db, "outbox-relay", "successor", 60).acquire()
    finally:
        await client.close()


async def test_emitted_events_are_written_together_after_the_handler_and_only_on_commit(
    settings_for: Callable[..., Any],
) -> None:
    from shared.envelope import Envelope
    from shared.outbox import OUTBOX, outbox_events
    from shared.topics import HOTLINE_EVENTS

    svc = Service(settings_for(UowSettings, outbox_poll_s=3600.0))
    writes: list[str] = []

    def events(key: str) -> list[Envelope]:
        return [
            Envelope(type="test.thing.made", source="/t", district="310101", partitionkey=key)
            for _ in range(3)
        ]

    emitted = events("ok")

    async def emits(uow: UnitOfWork) -> None:
        for event in emitted:
            await uow.emit(event, HOTLINE_EVENTS)
        writes.append("handler done")  # nothing written to the outbox before this point
        outbox = await uow.collection(OUTBOX)
        assert await outbox.count_documents({}, session=uow.session) == 0

    async def emits_then_fails(uow: UnitOfWork) -> None:
        for event in events("failed"):
            await uow.emit(event, HOTLINE_EVENTS)
        raise ValueError("handler failed")

    async with svc.running():
        assert svc.relay is not None
        await svc.relay.stop()  # keep the entries in the outbox to look at them
        await svc.run_in_uow(emits)
        with pytest.raises(ValueError, match="handler failed"):
            await svc.run_in_uow(emits_then_fails)
        entries = await outbox_events(svc.db)
        documents = await svc.db[OUTBOX].count_documents({})
    assert writes == ["handler done"]
    assert [e["key"] for e in entries] == [b"ok"] * 3, "the failed handler's events are gone"
    assert [e["id"] for e in entries] == [e.id for e in emitted], "in emit order"
    assert documents == 1, "one outbox document per transaction"


async def test_indexes_no_query_needs_are_dropped_at_start(
    settings_for: Callable[..., Any],
) -> None:
    """Issue #18: every index costs every write to its collection. A retired index name and a
    ``list_*`` index the plan no longer names are dropped when a service starts; the plan's
    own indexes and indexes of nobody's plan stay."""
    from pymongo import IndexModel

    from shared.timers import TIMERS

    settings = settings_for(UowSettings)
    client = make_client(settings.mongo_uri, "test")
    try:
        db = client[settings.database]
        await db[TIMERS].create_index("subject", name="by_subject")
        await db["things"].create_indexes(
            [
                IndexModel([("old", 1)], name="list_old"),
                IndexModel([("kept", 1)], name="list_kept"),
                IndexModel([("mine", 1)], name="operator_made"),
            ]
        )
        svc = Service(settings)
        svc.indexes({"things": [IndexModel([("kept", 1)], name="list_kept")]})
        async with svc.running():
            timers = {i["name"] async for i in await db[TIMERS].list_indexes()}
            things = {i["name"] async for i in await db["things"].list_indexes()}
    finally:
        await client.close()
    assert "by_subject" not in timers and "claimable" in timers
    assert things == {"_id_", "list_kept", "operator_made"}


async def test_background_writers_take_turns_while_api_commands_do_not_wait(
    settings_for: Callable[..., Any],
) -> None:
    """Consumer batches, timers and workers of one process run their transactions one at a
    time (``serial``): side by side they conflicted on the same aggregates and a whole batch
    ran again. An API command does not queue behind them."""
    import asyncio

    svc = Service(settings_for(UowSettings))
    ran: list[str] = []
    first_in, release = asyncio.Event(), asyncio.Event()

    async def first(uow: UnitOfWork) -> None:
        ran.append("first")
        first_in.set()
        await release.wait()

    async def second(uow: UnitOfWork) -> None:
        ran.append("second")

    async def api(uow: UnitOfWork) -> None:
        ran.append("api")

    async with svc.running():
        holding = asyncio.create_task(svc.run_in_uow(first, serial=True))
        await first_in.wait()
        waiting = asyncio.create_task(svc.run_in_uow(second, serial=True))
        await svc.run_in_uow(api)  # done while the first background writer holds its turn
        assert ran == ["first", "api"], "the second background writer waits for its turn"
        release.set()
        await asyncio.gather(holding, waiting)
    assert ran == ["first", "api", "second"]


@pytest.mark.parametrize("together_max", [64, 2])
async def test_a_small_unit_writes_in_one_command_a_large_one_per_collection(
    settings_for: Callable[..., Any], together_max: int
) -> None:
    """Up to JIANDU_WRITE_TOGETHER_MAX documents: ONE bulkWrite across collections (a small
    batch's latency is its round trips); more: one insert / update per collection, which
    SecantusDB applies with less CPU per document. Both write the same documents."""

    from shared.envelope import Envelope
    from shared.outbox import outbox_events
    from shared.timers import TIMERS
    from shared.topics import HOTLINE_EVENTS

    svc = Service(settings_for(UowSettings, write_together_max=together_max, outbox_poll_s=3600.0))
    due = datetime.now(UTC) + timedelta(days=1)
    event = Envelope(type="test.thing.made", source="/t", district="310101", partitionkey="k")

    async def writes(uow: UnitOfWork) -> None:
        uow.documents("things").add({"_id": "new"})
        uow.documents("things").put({"_id": "old", "v": 2})
        uow.documents("others").add({"_id": "o"})
        await uow.schedule("thing:later", "test.later", due)
        await uow.emit(event, HOTLINE_EVENTS)

    async with svc.running():
        assert svc.relay is not None
        await svc.relay.stop()
        await svc.db["things"].insert_one({"_id": "old", "v": 1})
        before = svc.mongo_commands.totals()["commands"]
        await svc.run_in_uow(writes)
        after = svc.mongo_commands.totals()["commands"]
        things = await svc.db["things"].find().sort("_id").to_list()
        others = await svc.db["others"].find().to_list()
        timer = await svc.db[TIMERS].find_one({"_id": "thing:later"})
        entries = await outbox_events(svc.db)
    sent = {name: after[name] - before.get(name, 0) for name in after}
    sent = {name: n for name, n in sent.items() if n and name != "commitTransaction"}
    if together_max == 64:  # 5 documents: together
        assert sent == {"bulkWrite": 1}
    else:  # per collection: things (insert, update), others, timers, outbox
        assert sent == {"insert": 3, "update": 2}
    assert things == [{"_id": "new"}, {"_id": "old", "v": 2}] and others == [{"_id": "o"}]
    assert timer is not None and timer["status"] == "pending"
    assert [e["id"] for e in entries] == [event.id]


async def test_written_together_errors_are_the_ones_a_collection_write_raises(
    settings_for: Callable[..., Any],
) -> None:
    """A duplicate key in the one bulkWrite is a DuplicateKeyError (API commands retry it, then
    answer 409), as an insert into one collection would raise."""
    from pymongo.errors import DuplicateKeyError

    svc = Service(settings_for(UowSettings, write_together_max=64, transaction_attempts=1))

    async def inserts_twice(uow: UnitOfWork) -> None:
        uow.documents("things").add({"_id": "same"})

    async with svc.running():
        await svc.run_in_uow(inserts_twice)
        with pytest.raises(DuplicateKeyError):
            await svc.run_in_uow(inserts_twice)


async def test_a_replica_without_the_relay_lease_publishes_its_own_events_at_once(
    settings_for: Callable[..., Any], tap: Callable[[str], Any]
) -> None:
    """Only the lease holder used to publish: another replica's events waited for its next
    pass (5 to 15 s with two replicas, measured). Now each replica sends what its own commits
    wrote; the holder sweeps the rest, leaving another replica's fresh documents to it."""

    from shared.envelope import Envelope
    from shared.outbox import OUTBOX, outbox_document
    from shared.topics import HOTLINE_EVENTS

    slow = {"lease_s": 3600.0, "outbox_poll_s": 3600.0, "outbox_sweep_grace_s": 3600.0}
    holder = Service(settings_for(UowSettings, instance_id="uow-holder", **slow))
    other = Service(settings_for(UowSettings, instance_id="uow-other", **slow))
    topic = HOTLINE_EVENTS.qualified(holder.settings.topic_prefix)
    events = await tap(topic)
    event = Envelope(type="test.thing.made", source="/t", district="310101", partitionkey="k")

    async def emits(uow: UnitOfWork) -> None:
        await uow.emit(event, HOTLINE_EVENTS)

    async with holder.running(), other.running():
        assert holder.relay is not None and other.relay is not None
        await holder.relay.drain_once()  # the holder takes the lease (for an hour)
        assert not await Lease(holder.db, "outbox-relay", "uow-other", 60).acquire()
        await other.run_in_uow(emits)  # no poll for an hour: only "at once" can send it
        await events.wait_for_events(lambda got: [e.id for e in got] == [event.id], timeout=15)
        # a fresh unsent document of a third replica: the sweep leaves it to its writer ...
        fresh = outbox_document([], by="uow-third")
        old = {**outbox_document([], by="uow-third"), "created_at": datetime.now(UTC)}
        old["created_at"] -= timedelta(hours=2)  # ... unless it is older than the grace
        await holder.db[OUTBOX].insert_many([fresh, old])
        swept = await holder.relay._sweep()
    assert [d["_id"] for d in swept] == [old["_id"]]
    assert [e.id for e in events.events()] == [event.id], "sent once"


async def test_a_refused_lease_is_not_asked_for_again_at_once(
    settings_for: Callable[..., Any],
) -> None:
    """A replica without the lease wakes on each of its commits; it asks MongoDB again only
    after an eighth of the lease, and at once after a release of its own."""
    svc = Service(settings_for(UowSettings))
    async with svc.running():
        holder = Lease(svc.db, "a-job", "holder", 80)
        other = Lease(svc.db, "a-job", "other", 80)
        assert await holder.acquire()
        assert not await other.acquire()
        await holder.release()  # free now, but ``other`` was told no less than 10 s ago
        assert not await other.acquire()
        other._ask_after = datetime.now(UTC) - timedelta(seconds=1)  # 10 s later
        assert await other.acquire()
        assert not await holder.acquire()


async def test_the_relay_publishes_its_own_commits_from_memory_and_sweeps_the_rest(
    settings_for: Callable[..., Any],
) -> None:
    """What this replica committed leaves without being read back (no ``find`` per commit);
    the sweep (lease holder, at the poll) still takes an unsent document it never held."""
    from prometheus_client import CollectorRegistry

    from shared.envelope import Envelope
    from shared.mongo import CommandCounter
    from shared.outbox import OUTBOX, OutboxRelay, outbox_document, outbox_entry

    svc = Service(settings_for(UowSettings))
    counter = CommandCounter(CollectorRegistry())
    client = make_client(svc.settings.mongo_uri, "relay-check", [counter])
    published: list[list[str]] = []

    async def publish(entries: list[Any]) -> None:
        published.append([e["id"] for e in entries])

    def doc_of(name: str) -> Any:
        event = Envelope(type="test.thing.made", source="/t", district="310101", partitionkey=name)
        return outbox_document([outbox_entry(event, "t.events")], by="me")

    try:
        db = client[svc.settings.database]
        relay = OutboxRelay(db, publish, owner="me", lease_s=60, poll_s=3600, batch=500)
        assert await relay.drain_once() == 0  # the first pass sweeps (nothing yet)
        mine, lost = doc_of("mine"), doc_of("lost")  # "lost": written, never handed over
        await db[OUTBOX].insert_many([mine, lost])
        relay.wake([mine])
        finds = counter.totals()["commands"].get("find", 0)
        assert await relay.drain_once() == 1
        assert published == [[mine["events"][0]["id"]]]
        assert counter.totals()["commands"].get("find", 0) == finds
        assert await relay.drain_once() == 1  # nothing of its own left: the sweep
        assert published[-1] == [lost["events"][0]["id"]]
        assert await db[OUTBOX].count_documents({"sent_at": None}) == 0
    finally:
        await client.close()


async def test_the_relay_marks_what_it_sent_together_and_before_it_sweeps(
    settings_for: Callable[..., Any],
) -> None:
    """Published documents are marked sent together, at most ``mark_every_s`` later: one
    ``update`` for several commits. The sweep marks them first, so it never sends them again,
    and so does a stop."""
    from pymongo import monitoring

    from shared.envelope import Envelope
    from shared.outbox import OUTBOX, OutboxRelay, outbox_document, outbox_entry

    class OutboxUpdates(monitoring.CommandListener):
        def __init__(self) -> None:
            self.marks: list[int] = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name == "update" and event.command["update"] == OUTBOX:
                self.marks.append(len(event.command["updates"][0]["q"]["_id"]["$in"]))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    svc = Service(settings_for(UowSettings))
    listener = OutboxUpdates()
    client = make_client(svc.settings.mongo_uri, "relay-marks", [listener])
    published: list[str] = []

    async def publish(entries: list[Any]) -> None:
        published.extend(e["id"] for e in entries)

    def doc_of(name: str) -> Any:
        event = Envelope(type="test.thing.made", source="/t", district="310101", partitionkey=name)
        return outbox_document([outbox_entry(event, "t.events")], by="me")

    try:
        db = client[svc.settings.database]
        relay = OutboxRelay(
            db, publish, owner="me", lease_s=60, poll_s=3600, batch=500, mark_every_s=3600
        )
        assert await relay.drain_once() == 0  # the first pass sweeps (nothing yet)
        docs = [doc_of(name) for name in ("a", "b", "c")]
        await db[OUTBOX].insert_many(docs)
        for doc in docs[:2]:
            relay.wake([doc])
            assert await relay.drain_once() == 1
        assert await db[OUTBOX].count_documents({"sent_at": None}) == 3
        assert listener.marks == []  # published, not marked yet

        relay.wake([docs[2]])
        relay._sweep_after = 0.0  # the sweep is due: it marks a and b first, then takes c
        assert await relay.drain_once() == 1
        assert published == [d["events"][0]["id"] for d in docs]  # each once
        assert listener.marks == [2]
        assert await db[OUTBOX].count_documents({"sent_at": None}) == 1  # c: sent, unmarked

        await relay.stop()
        assert listener.marks == [2, 1]
        assert await db[OUTBOX].count_documents({"sent_at": None}) == 0
    finally:
        await client.close()
