"""Foundation guarantees on the real embedded Kafka and MongoDB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.envelope import Envelope, EventRejected
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import CASEREVIEW_EVENTS, HOTLINE_EVENTS, INGEST_QUARANTINE
from shared.unit_of_work import UnitOfWork
from tests.helpers import KafkaTap, Publisher, eventually, key_on_same_partition

pytestmark = pytest.mark.integration


class LedgerSettings(ServiceSettings):
    service_name: str = "ledger"


def build_ledger(settings: LedgerSettings, fail_publish: bool = False) -> Service:
    """A tiny service: counts ``test.thing.created`` per key and announces each count."""
    service = Service(settings)

    async def on_created(event: Envelope, uow: UnitOfWork) -> None:
        counts = uow.documents("counts")
        doc = await counts.get(event.partitionkey) or {"_id": event.partitionkey, "n": 0}
        doc["n"] += 1
        counts.put(doc)
        await uow.emit(
            Envelope(
                type="test.thing.counted",
                source=service.source,
                district=event.district,
                partitionkey=event.partitionkey,
                subject=event.subject,
                data={"n": doc["n"]},
            ),
            CASEREVIEW_EVENTS,
        )

    async def on_poison(event: Envelope, uow: UnitOfWork) -> None:
        raise RuntimeError(f"cannot digest {event.id}")

    async def on_invalid(event: Envelope, uow: UnitOfWork) -> None:
        raise EventRejected("data.amount: must be a number")

    service.consume(
        HOTLINE_EVENTS,
        {"test.thing.created": on_created, "test.poison": on_poison, "test.invalid": on_invalid},
        prefetch={"counts": lambda event: event.partitionkey},
    )
    if fail_publish:

        async def broken(*_: Any) -> None:
            raise ConnectionError("kafka unreachable (simulated crash before publish)")

        service.publish_outbox = broken  # type: ignore[method-assign]
    return service


def thing(key: str, type_: str = "test.thing.created", **data: Any) -> Envelope:
    return Envelope(type=type_, source="/tests", district="310106", partitionkey=key, data=data)


async def test_same_event_twice_changes_state_once(
    settings_for: Callable[..., LedgerSettings], publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(LedgerSettings)
    out: KafkaTap = await tap(settings.topic_prefix + CASEREVIEW_EVENTS.name)
    event = thing("A-1")
    async with build_ledger(settings).running() as svc:
        for _ in range(3):
            await publisher.event(svc.topic(HOTLINE_EVENTS), event)
        marker = thing(key_on_same_partition("A-1", HOTLINE_EVENTS.partitions))
        await publisher.event(svc.topic(HOTLINE_EVENTS), marker)
        await out.wait_for_events(lambda es: any(e.partitionkey == marker.partitionkey for e in es))
        assert await svc.db["counts"].find_one({"_id": "A-1"}) == {"_id": "A-1", "n": 1}
    counted = [e for e in out.events() if e.partitionkey == "A-1"]
    assert [e.data["n"] for e in counted] == [1]


async def test_outbox_publishes_exactly_once_after_crash_before_publish(
    settings_for: Callable[..., LedgerSettings], publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(LedgerSettings)
    out: KafkaTap = await tap(settings.topic_prefix + CASEREVIEW_EVENTS.name)
    crashed = build_ledger(settings, fail_publish=True)
    async with crashed.running() as svc:
        await publisher.event(svc.topic(HOTLINE_EVENTS), thing("B-1"))
        await eventually(lambda: svc.db["counts"].find_one({"_id": "B-1"}))
        assert await svc.relay.pending() == 1  # type: ignore[union-attr]
    assert out.records == []
    async with build_ledger(settings).running() as svc:
        await out.wait_for_events(lambda es: len(es) >= 1)
        await eventually(lambda: _zero(svc))
        await publisher.event(svc.topic(HOTLINE_EVENTS), thing("B-2"))
        await out.wait_for_events(lambda es: any(e.partitionkey == "B-2" for e in es))
    b1 = [e for e in out.events() if e.partitionkey == "B-1"]
    assert len(b1) == 1 and b1[0].data == {"n": 1}


async def _zero(svc: Service) -> bool:
    return await svc.relay.pending() == 0  # type: ignore[union-attr]


async def test_restarted_consumer_resumes_without_losing_or_repeating(
    settings_for: Callable[..., LedgerSettings], publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(LedgerSettings)
    out: KafkaTap = await tap(settings.topic_prefix + CASEREVIEW_EVENTS.name)
    topic = settings.topic_prefix + HOTLINE_EVENTS.name
    async with build_ledger(settings).running():
        for i in range(5):
            await publisher.event(topic, thing(f"C-{i}"))
        await out.wait_for_events(lambda es: len(es) >= 5)
    for i in range(5, 10):
        await publisher.event(topic, thing(f"C-{i}"))
    async with build_ledger(settings).running() as svc:
        await out.wait_for_events(lambda es: len(es) >= 10)
        counts = await svc.db["counts"].find().to_list()
    assert sorted(d["_id"] for d in counts) == sorted(f"C-{i}" for i in range(10))
    assert all(d["n"] == 1 for d in counts)
    assert sorted(e.partitionkey for e in out.events()) == sorted(f"C-{i}" for i in range(10))


async def test_poison_message_goes_to_dlt_with_error_headers_and_partition_flows(
    settings_for: Callable[..., LedgerSettings], publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(LedgerSettings, handler_attempts=3)
    topic = settings.topic_prefix + HOTLINE_EVENTS.name
    dlt: KafkaTap = await tap(topic + ".dlt")
    out: KafkaTap = await tap(settings.topic_prefix + CASEREVIEW_EVENTS.name)
    async with build_ledger(settings).running():
        # Same key → same partition: the good event sits behind the poison one.
        await publisher.event(topic, thing("D-1", "test.poison"))
        await publisher.event(topic, thing("D-1"))
        records = await dlt.wait_for(lambda rs: len(rs) >= 1)
        await out.wait_for_events(lambda es: any(e.partitionkey == "D-1" for e in es))
    headers = {k: v.decode() for k, v in records[0].headers}
    assert headers["x-original-topic"] == topic
    assert headers["x-attempts"] == "3"
    assert "RuntimeError: cannot digest" in headers["x-exception"]
    assert int(headers["x-original-offset"]) >= 0 and int(headers["x-original-partition"]) >= 0
    assert headers["ce_type"] == "test.poison"
    assert len(dlt.records) == 1


async def test_bad_input_is_quarantined_with_reason_never_dropped(
    settings_for: Callable[..., LedgerSettings], publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(LedgerSettings)
    topic = settings.topic_prefix + HOTLINE_EVENTS.name
    quarantine: KafkaTap = await tap(settings.topic_prefix + INGEST_QUARANTINE.name)
    async with build_ledger(settings).running() as svc:
        await publisher.raw(topic, b"\xff\xfe not json", key=b"x")
        await publisher.raw(topic, b"{}", headers=[("ce_id", b"1"), ("ce_type", b"t")])
        await publisher.event(topic, thing("E-1", "test.invalid"))
        await quarantine.wait_for_events(lambda es: len(es) >= 3)
        docs = await svc.db["quarantine"].find().sort("offset").to_list()
    reasons = sorted(d["reason"] for d in docs)
    assert len(docs) == 3
    assert any("no CloudEvents" in r for r in reasons)
    assert any("data.amount" in r for r in reasons)
    assert any("source" in r or "district" in r or "CloudEvent" in r for r in reasons)


async def test_poison_record_inside_a_batch_is_isolated_and_the_rest_commit_in_order(
    settings_for: Callable[..., LedgerSettings], publisher: Publisher, tap: Any
) -> None:
    """A batch that fails is bisected: only the poison record is retried and dead-lettered;
    the records before and after it, on the same key, commit once each and in order."""
    settings = settings_for(LedgerSettings, handler_attempts=2, batch_max_records=50)
    topic = settings.topic_prefix + HOTLINE_EVENTS.name
    dlt: KafkaTap = await tap(topic + ".dlt")
    out: KafkaTap = await tap(settings.topic_prefix + CASEREVIEW_EVENTS.name)
    for i in range(20):  # published before the service starts: its first polls take them all
        await publisher.event(
            topic, thing("F-1", "test.poison" if i == 9 else "test.thing.created")
        )
    ledger = build_ledger(settings)
    async with ledger.running() as svc:
        await dlt.wait_for(lambda rs: len(rs) >= 1)
        counted = await out.wait_for_events(lambda es: len(es) >= 19)
        doc = await svc.db["counts"].find_one({"_id": "F-1"})
    consumer = next(iter(ledger.consumers.values()))
    assert consumer.largest_batch > 1, "the records came in batches"
    assert consumer.transactions < 20 + 2 * 5, "fewer transactions than one per record and retry"
    assert len(dlt.records) == 1
    assert dict(dlt.records[0].headers)["ce_type"] == b"test.poison"
    assert doc == {"_id": "F-1", "n": 19}
    assert [e.data["n"] for e in counted if e.partitionkey == "F-1"] == list(range(1, 20))


async def test_a_batch_costs_less_than_one_mongodb_command_per_event(
    settings_for: Callable[..., LedgerSettings], publisher: Publisher, tap: Any
) -> None:
    """The cost model of the batch runtime: inbox look-up, prefetch, one write per collection
    and the commit are paid per batch, so 200 events on 20 keys take far fewer commands and
    written documents than events (one transaction per event took about 6 and 4)."""
    settings = settings_for(LedgerSettings, batch_max_records=200)
    topic = settings.topic_prefix + HOTLINE_EVENTS.name
    out: KafkaTap = await tap(settings.topic_prefix + CASEREVIEW_EVENTS.name)
    n = 200
    for i in range(n):
        await publisher.event(topic, thing(f"G-{i % 20}"))
    ledger = build_ledger(settings)
    async with ledger.running() as svc:
        await out.wait_for_events(lambda es: len(es) >= n)
        counts = {d["_id"]: d["n"] for d in await svc.db["counts"].find().to_list()}
        totals = svc.mongo_commands.totals()  # everything since start: indexes, relay, all
    consumer = next(iter(ledger.consumers.values()))
    commands = sum(totals["commands"].values())
    written = sum(totals["documents"].values())
    assert counts == {f"G-{k}": n // 20 for k in range(20)}
    assert consumer.largest_batch > 1
    assert commands < n / 2, totals
    # per event: its outbox entry and that entry marked sent; per batch: one inbox document
    # (the batch's event ids) and one counter document for each key the batch touched; and
    # the relay's lease renewals
    assert written <= 2 * n + 21 * consumer.transactions + 5, totals
