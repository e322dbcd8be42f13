"""Two replicas of every service on the real embedded servers (``make run REPLICAS=2``).

* every partition a service consumes is owned by exactly one of its replicas;
* SIGKILLing replica 1 of every service moves its partitions to replica 0, and every event,
  before and after the kill, is taken exactly once in effect (inbox, no duplicate notice);
* timers already due (the demo story is in the past) fire once across both replicas.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from devtools.demo.generator import DemoGenerator
from devtools.embedded import free_port, wait_drained
from devtools.runner import SERVICES, Platform, free_port_offset
from shared.mongo import make_client
from shared.settings import kafka_client_id
from shared.topics import CONSUMES, EXTERNAL_TYPE_TOPICS
from tests.system.accounting import account

pytestmark = [pytest.mark.integration]

Ownership = dict[tuple[str, int], list[str]]


def _assigned(raw: bytes) -> list[tuple[str, int]]:
    """Decode a member assignment (version, [topic, [partition]], user data).

    noida-db may leave out the trailing user-data field, which aiokafka's decoder requires.
    """
    buf = io.BytesIO(raw)

    def read(fmt: str) -> int:
        size = struct.calcsize(fmt)
        return int(struct.unpack(fmt, buf.read(size))[0])

    read(">h")  # version
    pairs: list[tuple[str, int]] = []
    for _ in range(read(">i")):
        topic = buf.read(read(">h")).decode()
        pairs.extend((topic, read(">i")) for _ in range(read(">i")))
    return pairs


async def ownership(bootstrap: str, group: str) -> tuple[str, Ownership]:
    """The group's state and, per topic-partition, the client ids of the members owning it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        _, _, state, _, _, members = response.groups[0][:6]
        owners: Ownership = {}
        for member in members:
            client_id, raw = member[1], member[4]
            if not raw:
                continue
            for topic, partition in _assigned(raw):
                owners.setdefault((topic, partition), []).append(client_id)
        return str(state), owners
    finally:
        await admin.close()


async def stable_ownership(
    bootstrap: str,
    group: str,
    expect: set[str],
    timeout: float,
    partitions: set[tuple[str, int]] | None = None,
) -> Ownership:
    """Wait until the group is Stable with exactly the ``expect`` client ids owning partitions
    (and, when given, owning at least ``partitions``: a service with two consumers in its group
    can be Stable for a moment while its second consumer is still rejoining)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state, owners = await ownership(bootstrap, group)
        holders = {c for clients in owners.values() for c in clients}
        complete = partitions is None or partitions <= set(owners)
        if state == "Stable" and holders == expect and complete:
            return owners
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{group}: state {state}, owners {owners}, expected {expect}")
        await asyncio.sleep(0.5)


async def _publish(bootstrap: str, events: list[Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            key, value, headers = event.to_kafka()
            await producer.send_and_wait(
                EXTERNAL_TYPE_TOPICS[event.type].name,
                value,
                key=key,
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
    finally:
        await producer.stop()


async def test_two_replicas_share_partitions_and_survive_losing_one(tmp_path: Path) -> None:
    services = list(SERVICES)
    platform = Platform(
        tmp_path / "data",
        replicas=2,
        kafka_port=free_port(),
        mongo_port=free_port(),
        port_offset=free_port_offset(),
        extra_env={"JIANDU_SESSION_TIMEOUT_MS": "6000", "JIANDU_OUTBOX_POLL_S": "0.2"},
    )
    generated = DemoGenerator(seed=11, start=datetime(2026, 3, 2, 8, tzinfo=UTC)).events(
        n_orders=60, n_cases=20
    )
    events = [event for _, event in generated]
    half = len(events) // 2
    t0 = time.monotonic()
    await asyncio.to_thread(platform.start, 240.0)
    print(f"ready after {time.monotonic() - t0:.0f}s")
    bootstrap = platform.servers.kafka_bootstrap
    try:
        both = {name: {kafka_client_id(f"{name}-{r}") for r in (0, 1)} for name in services}
        consumed = {
            name: {(t.name, p) for t in CONSUMES[name] for p in range(t.partitions)}
            for name in services
        }
        partitions: dict[str, set[tuple[str, int]]] = {}
        for name in services:
            owners = await stable_ownership(
                bootstrap, name, both[name], timeout=120, partitions=consumed[name]
            )
            assert all(len(clients) == 1 for clients in owners.values()), owners
            partitions[name] = set(owners)  # the consumed topics' and (gateway) the DLTs'

        print(f"shared after {time.monotonic() - t0:.0f}s")
        await _publish(bootstrap, events[:half])
        for name in services:
            victim = next(sp for sp in platform.processes if sp.name == name and sp.replica == 1)
            await asyncio.to_thread(platform.kill, victim)
        await _publish(bootstrap, events[half:])

        for name in services:
            survivor = {kafka_client_id(f"{name}-0")}
            owners = await stable_ownership(
                bootstrap, name, survivor, timeout=120, partitions=partitions[name]
            )
            assert set(owners) == partitions[name], "the survivor owns every partition"
        print(f"moved after {time.monotonic() - t0:.0f}s")
        mongo = make_client(platform.servers.mongo_uri, "replicas-check")
        try:
            await wait_drained(
                bootstrap,
                mongo,
                services,
                [f"jiandu_{s}" for s in services],
                timeout=180,
                interval=1.0,
            )
            print(f"quiet after {time.monotonic() - t0:.0f}s")
            result = await account(bootstrap, mongo, events)
            fired = 0
            for name in services:
                fired += await mongo[f"jiandu_{name}"]["timers"].count_documents({"fired_count": 1})
        finally:
            await mongo.close()
    finally:
        await asyncio.to_thread(platform.stop)
    assert result.missing == []
    assert result.duplicate_notices == []
    assert result.unexplained_dead_letters == []
    assert result.timers_fired_twice == []
    assert fired > 0, "due timers fired (once each)"
    assert result.processed > 0
