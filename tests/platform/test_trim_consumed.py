"""The bench deletes, between its phases, the records every consumer has committed past
(``devtools.embedded.trim_consumed``): noida-db writes its whole state again as records
arrive, so what it holds would weigh on every later phase. Nothing a consumer still needs
may go, and topics no service consumes (dead letters) stay whole.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from devtools.embedded import EmbeddedServers, trim_consumed
from shared.topics import INGEST_ENFORCEMENT


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_only_what_every_consumer_committed_goes(
    servers: EmbeddedServers, prefix: str, topics: list[str]
) -> None:
    bootstrap = servers.kafka_bootstrap
    cases = INGEST_ENFORCEMENT.qualified(prefix)  # read by hotline and casereview
    dead = INGEST_ENFORCEMENT.dlt(prefix)  # read by no service's group
    p0, p1, p2 = (TopicPartition(cases, p) for p in range(3))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, n in ((0, 6), (1, 2), (2, 4)):
            for i in range(n):
                await producer.send_and_wait(cases, b"r%d" % i, partition=partition)
        for i in range(3):
            await producer.send_and_wait(dead, b"d%d" % i, partition=0)
    finally:
        await producer.stop()
    await commit(bootstrap, f"{prefix}hotline", {p0: 5, p1: 2, p2: 4})
    await commit(bootstrap, f"{prefix}casereview", {p0: 3, p2: 4})  # nothing on p1 yet

    trimmed = await trim_consumed(bootstrap, ["hotline", "casereview"], prefix)

    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()
    try:
        dlt0 = TopicPartition(dead, 0)
        starts = await reader.beginning_offsets([p0, p1, p2, dlt0])
        ends = await reader.end_offsets([p0, p1, p2])
    finally:
        await reader.stop()
    assert starts[p0] == 3  # the slower group's commit, not the faster's
    assert starts[p1] == 0  # casereview has not committed there: it may still need all
    assert starts[p2] == 4  # both are at the end
    assert starts[dlt0] == 0  # dead letters stay whole
    assert ends == {p0: 6, p1: 2, p2: 4}  # offsets go on where they were
    assert trimmed == 3 + 4

    assert await trim_consumed(bootstrap, ["hotline", "casereview"], prefix) == 0
