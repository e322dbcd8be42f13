"""One service alone on embedded servers (``jiandu bench-alone``): what its events cost it.

``make bench`` runs fourteen processes on the machine's cores, and two runs of the same code
differ by a fifth: too coarse to show a change to one service. Here one service takes its
real input, either as a backlog published before it starts or paced at ``--rate`` events/s,
in the measuring process and on a SecantusDB of its own. The input is what it consumes of a
demo run: the demo's events on its ingest topics, and what the services producing its other
topics emitted for the demo (recorded in a first, unmeasured stage: for the gateway, every
other service; for notify, those that request notices; hotline, penalty and inspection
consume ingest topics only). Reported per event: CPU of the service's process (with ``--rate``, the
paced publisher's too: it runs in that process), of its SecantusDB and of noida-db; per batch:
records, MongoDB commands by name and written documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from pymongo import AsyncMongoClient

from devtools.benchmark import ProcessWatch, find_pid, tally
from devtools.demo.generator import DemoGenerator
from devtools.embedded import EmbeddedServers, free_port, wait_drained
from devtools.runner import EMBEDDED_FETCH_WAIT_MS
from shared.entrypoint import tune_gc
from shared.kafka_admin import create_topics
from shared.mongo import Document
from shared.registry import SERVICES
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import CONSUMES, EXTERNAL_TYPE_TOPICS, PRODUCES

STAGE = "stage."
"""Topic prefix of the first stage (the producers of the measured service's input)."""

Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]
"""An input record: unprefixed topic, key, value, headers."""


@dataclass
class AloneReport:
    service: str
    events: int
    rate: float | None
    """Paced input (events/s); ``None``: a backlog published before the service started."""
    seconds: float
    events_per_s: float
    cpu_ms_per_event: dict[str, float]
    """``service`` (the measuring process), ``mongodb`` (its SecantusDB), ``kafka`` (noida-db)."""
    batches: int
    records_per_batch: float
    commands_per_batch: dict[str, float]
    documents_per_event: float
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def settings_of(name: str, servers: EmbeddedServers, prefix: str) -> ServiceSettings:
    module, cls = SERVICES[name].settings.split(":")
    settings_cls: type[ServiceSettings] = getattr(importlib.import_module(module), cls)
    return settings_cls(
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri_for(name),
        topic_prefix=prefix,
        log_json=False,
        log_level="WARNING",
        kafka_fetch_wait_ms=EMBEDDED_FETCH_WAIT_MS,
    )


def build(name: str, settings: ServiceSettings) -> Service:
    main = importlib.import_module(SERVICES[name].main)
    service: Service = main.build(settings)
    return service


def demo_input(orders: int, seed: int = 7) -> list[Record]:
    """The demo's events on the ingest topics, in time order (a third as many case files as
    work orders, and by default half as many inspections as case files)."""
    start = datetime(2026, 3, 2, tzinfo=UTC)
    records: list[Record] = []
    for _, event in DemoGenerator(seed=seed, start=start).events(orders, max(1, orders // 3)):
        topic = EXTERNAL_TYPE_TOPICS.get(event.type)
        if topic is not None:
            key, value, headers = event.to_kafka()
            records.append((topic.name, key, value, [(k, v.encode()) for k, v in headers.items()]))
    return records


def producers_for(name: str) -> list[str]:
    """The services whose events ``name`` consumes (not the gateway: the demo stands in for
    what it ingests)."""
    wanted = set(CONSUMES[name])
    return [s for s in SERVICES if s not in (name, "gateway") and wanted & set(PRODUCES[s])]


async def publish(bootstrap: str, prefix: str, records: list[Record], rate: float | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    try:
        t0 = time.perf_counter()
        for i, (topic, key, value, headers) in enumerate(records):
            if rate:
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await producer.send(prefix + topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def drain(*services: Service, timeout: float = 900) -> float:
    """Until every service is idle twice in a row (``wait_drained``, read with the bench's
    own clients: the services' command counters stay their own); when the quiet began."""
    s = services[0].settings
    clients: dict[str, AsyncMongoClient[Document]] = {
        svc.settings.database: AsyncMongoClient(svc.settings.mongo_uri) for svc in services
    }
    try:
        return await wait_drained(
            s.kafka_bootstrap,
            clients,
            [svc.name for svc in services],
            list(clients),
            timeout=timeout,
            prefix=s.topic_prefix,
        )
    finally:
        for client in clients.values():
            await client.close()


async def recorded(bootstrap: str, prefix: str, topics: list[str]) -> list[Record]:
    """Every record now on ``topics`` (prefixed), in the order they were produced."""
    consumer = AIOKafkaConsumer(
        *(prefix + t for t in topics), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(prefix + t, p)
            for t in topics
            for p in consumer.partitions_for_topic(prefix + t) or ()
        ]
        ends = await consumer.end_offsets(partitions)
        wanted = sum(ends.values())
        stamped: list[tuple[int, Record]] = []
        while len(stamped) < wanted:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, msgs in batch.items():
                topic = tp.topic.removeprefix(prefix)
                stamped += [
                    (m.timestamp, (topic, m.key, m.value or b"", list(m.headers))) for m in msgs
                ]
        # in the order they were produced, across topics (a paced run replays that order)
        return [record for _, record in sorted(stamped, key=lambda s: s[0])]
    finally:
        await consumer.stop()


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


async def run_alone(name: str, orders: int, rate: float | None, work_dir: Path) -> AloneReport:
    if name not in SERVICES:
        raise ValueError(f"bench-alone measures one of {', '.join(SERVICES)}, not {name}")
    # the stage's services share the first server; the measured one has its own
    servers = EmbeddedServers(
        work_dir, kafka_port=free_port(), mongo_port=free_port(), databases=["stage", name]
    )
    servers.start()
    try:
        consumed = [t.name for t in CONSUMES[name]]
        records = [r for r in demo_input(orders) if r[0] in consumed]
        if producers := producers_for(name):  # its input: what they emit for the demo
            await create_topics(servers.kafka_bootstrap, STAGE)
            await publish(servers.kafka_bootstrap, STAGE, demo_input(orders), None)
            stage = [build(p, settings_of(p, servers, STAGE)) for p in producers]
            async with contextlib.AsyncExitStack() as running:
                for svc in stage:
                    await running.enter_async_context(svc.running())
                await drain(*stage)
            records = await recorded(servers.kafka_bootstrap, STAGE, consumed)
        prefix = "alone."
        await create_topics(servers.kafka_bootstrap, prefix)
        service = build(name, settings_of(name, servers, prefix))
        tune_gc(service.settings)  # as the service's own process does (shared.entrypoint)
        if not rate:
            await publish(servers.kafka_bootstrap, prefix, records, None)
        pids = {"service": os.getpid(), "mongodb": servers.mongo_pids[name]}
        kafka = find_pid(str(servers.data_dir / "kafka"))
        if kafka:
            pids["kafka"] = kafka
        watch = ProcessWatch(pids)
        async with service.running():
            before = tally(service.registry.collect())  # after the start's own commands
            watch.start()
            t0 = time.perf_counter()
            if rate:
                await publish(servers.kafka_bootstrap, prefix, records, rate)
            seconds = await drain(service) - t0
            processes = await watch.stop()
            after = tally(service.registry.collect())
    finally:
        servers.stop()
    events = len(records)
    batches = after["batches"].get("batches", 0) - before["batches"].get("batches", 0)
    records_in = after["batches"].get("records", 0) - before["batches"].get("records", 0)
    commands = delta(after["commands"], before["commands"])
    documents = sum(after["documents"].values()) - sum(before["documents"].values())
    per_batch = max(batches, 1)
    return AloneReport(
        service=name,
        events=events,
        rate=rate,
        seconds=round(seconds, 2),
        events_per_s=round(events / seconds, 1),
        cpu_ms_per_event={k: round(1000 * v["cpu_s"] / events, 3) for k, v in processes.items()},
        batches=int(batches),
        records_per_batch=round(records_in / per_batch, 1),
        commands_per_batch={k: round(v / per_batch, 2) for k, v in sorted(commands.items())},
        documents_per_event=round(documents / max(events, 1), 2),
    )


def as_dict(report: AloneReport) -> dict[str, Any]:
    return asdict(report)
