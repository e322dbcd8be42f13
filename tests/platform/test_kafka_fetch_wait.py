"""The client-side long-poll for noida-db: short while records flow, long when idle."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from devtools.embedded import EmbeddedServers
from shared.kafka_fetch_wait import FetchWait, emulate_fetch_wait


def test_waits_double_after_each_empty_fetch_up_to_the_longest() -> None:
    waits = FetchWait(shortest_s=0.005, longest_s=0.1)
    assert [waits.after(False) for _ in range(7)] == [0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.1]


def test_records_end_the_wait_and_start_the_doubling_again() -> None:
    waits = FetchWait(shortest_s=0.005, longest_s=0.1)
    for _ in range(6):
        waits.after(False)
    assert waits.after(True) == 0.0
    assert waits.after(False) == 0.005


def test_a_fixed_wait_when_shortest_equals_longest() -> None:
    waits = FetchWait(shortest_s=0.1, longest_s=0.1)
    assert {waits.after(False) for _ in range(4)} == {0.1}


async def test_an_idle_consumer_on_noida_db_polls_about_every_longest_wait(
    servers: EmbeddedServers,
) -> None:
    """noida-db answers an empty fetch at once (thousands a second without the wait); with it,
    an idle consumer sends a few quick fetches and then one per ``longest``."""
    from aiokafka.consumer.fetcher import Fetcher

    kafka_bootstrap = servers.kafka_bootstrap
    emulate_fetch_wait(100, 5)
    topic = f"fetch-wait-{time.time_ns()}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"first")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    fetches = 0
    wrapped = Fetcher._proc_fetch_request

    async def counted(self: Fetcher, *args: object) -> bool:
        nonlocal fetches
        fetches += 1
        woke: bool = await wrapped(self, *args)
        return woke

    Fetcher._proc_fetch_request = counted  # type: ignore[method-assign]
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = await consumer.getmany(timeout_ms=5000, max_records=1)
        assert [r.value for r in got[tp]] == [b"first"]
        fetches = 0
        await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=5)
        # 5+10+20+40+80 ms, then every 100 ms: about 13 in a second, not thousands
        assert 1 <= fetches <= 20
    finally:
        Fetcher._proc_fetch_request = wrapped  # type: ignore[method-assign]
        await consumer.stop()
        emulate_fetch_wait(50, 5)
