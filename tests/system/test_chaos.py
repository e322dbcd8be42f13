"""Fault injection (``make chaos``; a short form runs in CI).

While a stream of demo events flows into the platform, every service is SIGKILLed once at a
random moment and restarted, then the Kafka server and the MongoDB server are restarted once
each. When the platform is quiet again, every event must be accounted for: taken by each
service that consumes it (inbox), quarantined with a reason, or dead-lettered with an
explanation; no notice twice; no timer fired twice.
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from devtools.demo.generator import DemoGenerator
from devtools.embedded import free_port, wait_drained
from devtools.runner import Platform, free_port_offset
from shared.mongo import make_client
from shared.topics import EXTERNAL_TYPE_TOPICS
from tests.system.accounting import account

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

EVENTS = int(os.environ.get("JIANDU_CHAOS_EVENTS", "400"))
SEED = int(os.environ.get("JIANDU_CHAOS_SEED", "7"))
SERVICES = ["hotline", "casereview", "penalty", "notify", "gateway", "inspection"]


async def _produce(bootstrap: str, events: list, stop_after: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i, event in enumerate(events):
            key, value, headers = event.to_kafka()
            topic = EXTERNAL_TYPE_TOPICS[event.type].name
            while True:
                try:
                    await producer.send_and_wait(
                        topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
                    )
                    break
                except Exception:  # Kafka restarting: the producer retries the same record
                    await asyncio.sleep(0.5)
            if i % 10 == 0:
                await asyncio.sleep(0.02)  # a stream, not a burst
    finally:
        stop_after.set()
        await producer.stop()


async def test_every_event_accounted_for_after_kills_and_server_restarts(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    platform = Platform(
        tmp_path / "data",
        kafka_port=free_port(),
        mongo_port=free_port(),
        port_offset=free_port_offset(),
        extra_env={"JIANDU_SESSION_TIMEOUT_MS": "6000", "JIANDU_OUTBOX_POLL_S": "0.2"},
    )
    generated = DemoGenerator(seed=SEED, start=datetime(2026, 3, 2, 8, tzinfo=UTC)).events(
        n_orders=EVENTS // 2, n_cases=EVENTS // 6
    )
    events = [event for _, event in generated][:EVENTS]
    await asyncio.to_thread(platform.start, 180.0)
    try:
        done = asyncio.Event()
        producer = asyncio.create_task(_produce(platform.servers.kafka_bootstrap, events, done))
        victims = list(platform.processes)
        rng.shuffle(victims)
        for victim in victims:
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await asyncio.to_thread(platform.restart, victim, 120.0)
        await asyncio.to_thread(platform.servers.stop_kafka)
        await asyncio.to_thread(platform.servers.start_kafka)
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        await asyncio.to_thread(platform.servers.stop_mongo)
        await asyncio.to_thread(platform.servers.start_mongo)
        await asyncio.wait_for(producer, 300)
        mongo = make_client(platform.servers.mongo_uri, "chaos-check")
        try:
            await wait_drained(
                platform.servers.kafka_bootstrap,
                mongo,
                SERVICES,
                [f"jiandu_{s}" for s in SERVICES],
                timeout=240,
                interval=1.0,
            )
            result = await account(platform.servers.kafka_bootstrap, mongo, events)
        finally:
            await mongo.close()
        alive = [sp.name for sp in platform.processes if sp.proc.poll() is None]
    finally:
        await asyncio.to_thread(platform.stop)
    print(
        f"chaos: {len(events)} events, {result.processed} taken, {result.quarantined} "
        f"quarantined, {result.dead_letters} dead-lettered"
    )
    assert sorted(alive) == sorted(SERVICES), "every service survived the server restarts"
    assert result.missing == []
    assert result.duplicate_notices == []
    assert result.timers_fired_twice == []
    assert result.unexplained_dead_letters == []
    assert result.processed > 0
