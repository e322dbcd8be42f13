"""A consumer's linger: records that come shortly after a first one join its batch.

Unit tests on a scripted consumer (aiokafka's ``getmany``); the real Kafka path runs in every
integration test, since every service subscribes through :func:`shared.subscription.linger`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from shared.settings import ServiceSettings
from shared.subscription import LingeringBatchSubscriber, gather_batch, linger

P0 = TopicPartition("t", 0)
P1 = TopicPartition("t", 1)


def record(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, b"", None, 0, 0, headers=[])


class ScriptedConsumer:
    """Answers ``getmany`` from a script; once it is spent, waits out the timeout with
    nothing, as aiokafka does when no record comes."""

    def __init__(self, *answers: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]):
        self.answers = list(answers)
        self.calls: list[tuple[int, int | None]] = []

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.calls.append((timeout_ms, max_records))
        if self.answers:
            return self.answers.pop(0)
        await asyncio.sleep(timeout_ms / 1000)
        return {}


async def test_records_that_follow_within_the_linger_join_the_batch_in_partition_order() -> None:
    a = [record(P0, i) for i in range(3)]
    b = [record(P1, 0)]
    consumer = ScriptedConsumer({P0: a[:1]}, {P1: b, P0: a[1:2]}, {P0: a[2:]})

    batch = await gather_batch(consumer, wait_ms=20, linger_ms=30, enough=10, max_records=10)

    assert batch == {P0: a, P1: b}
    # each later poll asks only for what still fits the batch
    assert [calls[1] for calls in consumer.calls[:3]] == [10, 9, 7]
    # and the linger ended the batch: the last poll waited for nothing until it was over
    assert len(consumer.calls) == 4


async def test_a_full_batch_goes_without_lingering() -> None:
    records = [record(P0, i) for i in range(5)]
    consumer = ScriptedConsumer({P0: records}, {P0: [record(P0, 5)]})

    batch = await gather_batch(consumer, wait_ms=20, linger_ms=10_000, enough=50, max_records=5)

    assert batch == {P0: records}
    assert len(consumer.calls) == 1


async def test_a_consumer_that_finds_enough_waiting_does_not_linger() -> None:
    """A busy consumer's batch goes at once: lingering would only add to its latency."""
    ready = [record(P0, i) for i in range(3)]
    consumer = ScriptedConsumer({P0: ready}, {P0: [record(P0, 3)]})

    batch = await gather_batch(consumer, wait_ms=20, linger_ms=10_000, enough=3, max_records=10)

    assert batch == {P0: ready}
    assert len(consumer.calls) == 1


async def test_a_poll_that_brought_nothing_does_not_linger() -> None:
    consumer = ScriptedConsumer({}, {P0: [record(P0, 0)]})

    assert await gather_batch(consumer, wait_ms=5, linger_ms=10_000, enough=5, max_records=5) == {}
    assert len(consumer.calls) == 1


async def test_no_linger_takes_only_what_was_ready() -> None:
    first = [record(P0, 0)]
    consumer = ScriptedConsumer({P0: first}, {P0: [record(P0, 1)]})

    assert await gather_batch(consumer, wait_ms=5, linger_ms=0, enough=5, max_records=5) == {
        P0: first
    }
    assert len(consumer.calls) == 1


def test_a_service_batch_subscriber_lingers_as_its_settings_say() -> None:
    settings = ServiceSettings(batch_linger_ms=7, batch_linger_records=4)
    broker = KafkaBroker()
    subscriber: Any = broker.subscriber(
        "t", batch=True, group_id="g", ack_policy=AckPolicy.NACK_ON_ERROR
    )

    linger(subscriber, settings.batch_linger_ms, settings.batch_linger_records)

    assert isinstance(subscriber, LingeringBatchSubscriber)
    assert (subscriber.linger_ms, subscriber.enough) == (7, 4)
    # no linger, or enough with one record: FastStream's subscriber as it is
    for linger_ms, enough in ((0, 4), (7, 1)):
        other: Any = broker.subscriber("u", batch=True, group_id="g")
        linger(other, linger_ms, enough)
        assert not isinstance(other, LingeringBatchSubscriber)
