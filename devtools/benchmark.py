"""``jiandu bench`` (``make bench``): the platform under load on the embedded servers.

One run measures, on the same noida-db and SecantusDB:

* raw baselines: aiokafka produce and consume rates, MongoDB ``insert_one`` and
  ``insert_many`` rates;
* end to end: demo events published to the ingest topics as fast as the pipeline takes them
  (sustained rate = events / time until the last downstream state change), then paced at 50%
  and 100% of that rate for latency percentiles ingest→routed and ingest→notice;
* CPU seconds and peak RSS per service process (``psutil``);

and writes a JSON report plus a PNG chart. ``--replicas 1,2`` repeats the end-to-end part
with one and two replicas of every service, side by side.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform as platform_module
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import Metric
from pymongo import AsyncMongoClient
from rich.progress import Progress
from rich.table import Table

from devtools.demo.generator import DemoGenerator
from devtools.embedded import (
    Clients,
    client_of,
    empty_topic,
    free_port,
    trim_consumed,
    wait_drained,
    wait_groups_stable,
)
from devtools.runner import Platform, free_port_offset
from shared.envelope import Envelope
from shared.mongo import Document, make_client
from shared.outbox import outbox_events
from shared.registry import SERVICES
from shared.topics import EXTERNAL_TYPE_TOPICS


@dataclass
class Rate:
    name: str
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_second": round(self.per_second, 1)}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 (ms) by the nearest-rank method; empty input gives an empty dict."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
        return round(ordered[index], 1)

    return {
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "mean": round(statistics.fmean(ordered), 1),
        "n": len(ordered),
    }


@dataclass
class ProcessSample:
    cpu_s: float
    rss_mb: float


def sample_process(pid: int) -> ProcessSample | None:
    """CPU seconds (user+system) and resident memory of ``pid`` (None once it has gone)."""
    try:
        with (proc := psutil.Process(pid)).oneshot():
            cpu, rss = proc.cpu_times(), proc.memory_info().rss
    except psutil.Error:
        return None
    return ProcessSample(cpu.user + cpu.system, rss / 2**20)


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine spent busy since boot (all cores, all processes)."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


async def kafka_produce_rate(bootstrap: str, topic: str, n: int, progress: Progress) -> Rate:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    task = progress.add_task("raw Kafka produce", total=n)
    payload = b"x" * 512
    try:
        t0 = time.perf_counter()
        futures = []
        for i in range(n):
            futures.append(await producer.send(topic, payload, key=str(i % 64).encode()))
            if i % 500 == 0:
                progress.update(task, completed=i)
        await asyncio.gather(*futures)
        seconds = time.perf_counter() - t0
    finally:
        await producer.stop()
    progress.update(task, completed=n)
    return Rate("kafka_produce", n, seconds)


async def kafka_consume_rate(bootstrap: str, topic: str, n: int, progress: Progress) -> Rate:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    task = progress.add_task("raw Kafka consume", total=n)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        t0 = time.perf_counter()
        while got < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            got += sum(len(v) for v in batch.values())
            progress.update(task, completed=got)
        seconds = time.perf_counter() - t0
    finally:
        await consumer.stop()
    return Rate("kafka_consume", got, seconds)


async def mongo_rates(uri: str, n: int, progress: Progress) -> tuple[Rate, Rate]:
    client = make_client(uri, "jiandu-bench")
    coll = client["jiandu_bench"]["raw"]
    await coll.drop()
    task = progress.add_task("raw MongoDB insert_one", total=n)
    t0 = time.perf_counter()
    for i in range(n):
        await coll.insert_one({"i": i, "district": "310106", "payload": "x" * 256})
        if i % 100 == 0:
            progress.update(task, completed=i)
    one = Rate("mongo_insert_one", n, time.perf_counter() - t0)
    progress.update(task, completed=n)
    task = progress.add_task("raw MongoDB insert_many", total=n)
    docs = [{"i": i, "district": "310106", "payload": "x" * 256} for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        await coll.insert_many(docs[start : start + 500])
        progress.update(task, completed=start + 500)
    many = Rate("mongo_insert_many", n, time.perf_counter() - t0)
    await client["jiandu_bench"].drop_collection("raw")
    await client.close()
    return one, many


@dataclass
class BenchReport:
    started_at: str
    machine: dict[str, Any]
    raw: list[dict[str, Any]] = field(default_factory=list)
    end_to_end: list[dict[str, Any]] = field(default_factory=list)
    catch_up: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")


# ------------------------------------------------------------------ end to end


SERVICE_DBS = {name: f"jiandu_{name}" for name in SERVICES}


@dataclass
class Sent:
    """What the bench published: wall-clock send time per event, by subject id."""

    at: dict[str, float] = field(default_factory=dict)  # subject id → first send (epoch s)
    count: int = 0


def subject_of(event: Envelope) -> str:
    return str(event.data.get("order_id") or event.data.get("case_id") or event.partitionkey)


async def publish_events(
    bootstrap: str,
    events: list[Envelope],
    rate: float | None,
    progress: Progress,
    label: str,
    sent: Sent,
) -> None:
    """Publish to the ingest topics, as fast as possible or paced at ``rate`` events/s."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    task = progress.add_task(label, total=len(events))
    t0 = time.perf_counter()
    try:
        pending = []
        for i, event in enumerate(events):
            if rate:
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            key, value, headers = event.to_kafka()
            sent.at.setdefault(subject_of(event), time.time())
            sent.count += 1
            pending.append(
                await producer.send(
                    EXTERNAL_TYPE_TOPICS[event.type].name,
                    value,
                    key=key,
                    headers=[(k, v.encode()) for k, v in headers.items()],
                )
            )
            progress.update(task, completed=i + 1)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


class DatabaseClients(dict[str, AsyncMongoClient[Document]]):
    """A client per service database, one per server (one server per service, or shared)."""

    @classmethod
    def of(cls, platform: Platform) -> DatabaseClients:
        by_uri: dict[str, AsyncMongoClient[Document]] = {}
        clients = cls()
        for name, db in SERVICE_DBS.items():
            uri = platform.servers.mongo_uri_for(name)
            if uri not in by_uri:
                by_uri[uri] = make_client(uri, "jiandu-bench")
            clients[db] = by_uri[uri]
        return clients

    async def close(self) -> None:
        for client in {id(c): c for c in self.values()}.values():
            await client.close()


async def drained(bootstrap: str, mongo: Clients, timeout: float) -> float:
    """When the whole platform went quiet (no lag, no waiting outbox entry)."""
    groups, dbs = list(SERVICES), list(SERVICE_DBS.values())
    return await wait_drained(bootstrap, mongo, groups, dbs, timeout=timeout)


TIMER_SETTLE_S = 1.5
"""Longer than a timer wheel poll (``JIANDU_TIMER_POLL_S``, 1 s) plus its handler."""


async def settle(bootstrap: str, mongo: Clients) -> None:
    """Drained, then drained again after the timers' deadlines that fell due have fired.

    Deadlines of the (historical) demo events are already past when the state is written:
    the timer wheel fires them at its next poll, possibly after the first drain, and the
    notices they cause would otherwise be missed or counted in the next phase.
    """
    await asyncio.sleep(TIMER_SETTLE_S)
    await drained(bootstrap, mongo, timeout=600)


async def latencies(mongo: Clients, sent: Sent) -> dict[str, dict[str, float]]:
    """ingest→routed (hotline's routed event written) and ingest→notice (notice created), ms."""
    routed: list[float] = []
    hotline = client_of(mongo, SERVICE_DBS["hotline"])[SERVICE_DBS["hotline"]]
    for doc in await outbox_events(hotline, type="jiandu.hotline.complaint.routed"):
        start = sent.at.get(bytes(doc["key"]).decode())
        if start is not None:
            routed.append((doc["created_at"].timestamp() - start) * 1000)
    notice: list[float] = []
    notify = SERVICE_DBS["notify"]
    async for doc in client_of(mongo, notify)[notify]["notices"].find(
        {}, {"subject_id": 1, "created_at": 1}
    ):
        start = sent.at.get(str(doc.get("subject_id")))
        if start is not None:
            notice.append((doc["created_at"].timestamp() - start) * 1000)
    return {"ingest_to_routed": percentiles(routed), "ingest_to_notice": percentiles(notice)}


Tally = dict[str, dict[str, float]]
"""``commands`` and ``documents`` by MongoDB command name; ``batches``: batches, records,
seconds spent applying them."""

BATCH_STATS = {
    "jiandu_batch_records_count": "batches",
    "jiandu_batch_records_sum": "records",
    "jiandu_batch_seconds_sum": "seconds",
}
COUNTED = {"jiandu_mongo_commands": "commands", "jiandu_mongo_documents_written": "documents"}


def tally(families: Iterable[Metric], into: Tally | None = None) -> Tally:
    """A service's MongoDB command and written-document counters and its consumers' batches,
    from its metric families (scraped from ``/metrics`` or read from its registry), added to
    ``into`` (replicas summed)."""
    out = into if into is not None else {"commands": {}, "documents": {}, "batches": {}}
    for family in families:
        if family.name in ("jiandu_batch_records", "jiandu_batch_seconds"):
            for sample in family.samples:
                if stat := BATCH_STATS.get(sample.name):
                    out["batches"][stat] = out["batches"].get(stat, 0.0) + sample.value
        elif kind := COUNTED.get(family.name):
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    name = sample.labels["command"]
                    out[kind][name] = out[kind].get(name, 0.0) + sample.value
    return out


async def command_counters(platform: Platform) -> dict[str, Tally]:
    """Each service's MongoDB command and written-document counters, and its consumer's
    batches (count, records, seconds spent applying), replicas summed."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Tally] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for sp in platform.processes:
            if sp.proc.poll() is not None:
                continue
            text = (await client.get(f"{sp.url}/metrics")).text
            out[sp.name] = tally(text_string_to_metric_families(text), out.get(sp.name))
    return out


def cost_per_event(
    before: dict[str, Tally],
    after: dict[str, Tally],
    events: int,
) -> dict[str, Any]:
    """Commands and written documents per ingest event: per service, by command, and in all."""
    services: dict[str, Any] = {}
    totals = {"commands": 0.0, "documents": 0.0}
    for name, counters in sorted(after.items()):
        row: dict[str, Any] = {}
        for kind in ("commands", "documents"):
            was = before.get(name, {}).get(kind, {})
            delta = {c: v - was.get(c, 0.0) for c, v in counters[kind].items()}
            delta = {c: d for c, d in delta.items() if d > 0}
            row[kind] = round(sum(delta.values()) / events, 3)
            row[f"{kind}_by_name"] = {c: round(d / events, 3) for c, d in sorted(delta.items())}
            totals[kind] += sum(delta.values())
        was = before.get(name, {}).get("batches", {})
        batches = {k: v - was.get(k, 0.0) for k, v in counters.get("batches", {}).items()}
        if batches.get("batches"):
            n = batches["batches"]
            row["batches"] = int(n)
            row["records_per_batch"] = round(batches.get("records", 0.0) / n, 1)
            row["ms_per_batch"] = round(1000 * batches.get("seconds", 0.0) / n, 1)
        services[name] = row
    return {
        "events": events,
        "commands_per_event": round(totals["commands"] / events, 3),
        "documents_per_event": round(totals["documents"] / events, 3),
        "services": services,
    }


class ProcessWatch:
    """Samples CPU and memory of the platform's processes while a phase runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.first: dict[str, ProcessSample] = {}
        self.last: dict[str, ProcessSample] = {}
        self.peak_rss: dict[str, float] = {}
        self.t0 = time.perf_counter()
        self.machine_first = machine_busy_s()
        self.machine_pct: float | None = None
        """Whole-machine CPU during the phase, in % of one core."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.machine_first = machine_busy_s()
        self._sample(first=True)
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._sample()

    def _sample(self, first: bool = False) -> None:
        for name, pid in self.pids.items():
            sample = sample_process(pid)
            if sample is None:
                continue
            if first:
                self.first[name] = sample
            self.last[name] = sample
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), sample.rss_mb)

    async def stop(self) -> dict[str, dict[str, float]]:
        if self._task is not None:
            self._task.cancel()
        self._sample()
        wall = time.perf_counter() - self.t0
        machine_last = machine_busy_s()
        if self.machine_first is not None and machine_last is not None and wall:
            self.machine_pct = round(100 * (machine_last - self.machine_first) / wall, 1)
        out: dict[str, dict[str, float]] = {}
        for name in self.pids:
            if name not in self.first:
                continue
            cpu = self.last[name].cpu_s - self.first[name].cpu_s
            out[name] = {
                "cpu_s": round(cpu, 2),
                "cpu_pct_of_one_core": round(100 * cpu / wall, 1) if wall else 0.0,
                "peak_rss_mb": round(self.peak_rss[name], 1),
            }
        return out


def find_pid(fragment: str) -> int | None:
    """The first process whose command line contains ``fragment`` (noida-db daemonizes)."""
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or ())
        if fragment in cmd and "noida" in cmd:
            return int(proc.pid)
    return None


def explain_limit(
    processes: dict[str, dict[str, float]], cpus: int, machine_pct: float | None = None
) -> str:
    """Which resource the end-to-end run saturated, from the CPU each process used.

    ``machine_pct`` is what the whole machine used meanwhile (% of one core): when processes
    outside the bench took the CPUs, the figures say more about them than about Jiandu.
    """
    if not processes:
        return "no process samples"
    busiest, stats = max(processes.items(), key=lambda kv: kv[1]["cpu_pct_of_one_core"])
    total = sum(p["cpu_pct_of_one_core"] for p in processes.values())
    share = f"{busiest} used {stats['cpu_pct_of_one_core']:.0f}% of a core"
    others = (machine_pct or 0.0) - total
    if machine_pct is not None and machine_pct >= 85 * cpus and others >= 25 * cpus:
        return (
            f"the machine's {cpus} CPUs were saturated, {others:.0f}% of one core by processes "
            f"outside the bench (the bench's own: {total:.0f}%): figures are understated; {share}"
        )
    if total >= 85 * cpus:
        return (
            f"the machine's {cpus} CPUs were saturated ({total:.0f}% of one core in all); {share}"
        )
    if stats["cpu_pct_of_one_core"] >= 70:  # a Python server with one event loop tops out here
        what = {
            "mongodb": "MongoDB (SecantusDB, one process: each handler transaction waits on it)",
            "kafka": "Kafka (noida-db)",
        }.get(busiest, f"the {busiest} service (one event loop)")
        if busiest.startswith("mongodb-"):
            what = f"{busiest.removeprefix('mongodb-')}'s MongoDB (SecantusDB, one process)"
        return f"{what} is the limit: {share}"
    return f"no single process saturated ({share}, {total:.0f}% in all): round-trip latency bound"


@dataclass
class EndToEnd:
    replicas: int
    events: int
    sustained_events_per_s: float
    paced: list[dict[str, Any]]
    processes: dict[str, dict[str, float]]
    machine_cpu_pct_of_one_core: float | None
    """Whole machine during the burst; minus the processes' sum: what other work took."""
    limit: str
    costs: dict[str, Any] = field(default_factory=dict)
    """MongoDB commands and written documents per ingest event of the burst, by service and
    command name (from each service's ``jiandu_mongo_*`` counters)."""
    prefilled: int = 0
    """Documents already in every collection of every service when the burst ran."""
    bursts: list[float] = field(default_factory=list)
    """Every burst's events/s; ``sustained_events_per_s`` is their median."""
    kafka_records_trimmed: int = 0
    """Records every consumer had committed, deleted before the run's phases (``--keep-records``:
    none), so that noida-db does not carry the earlier phases' records into the next."""


BURST_SEED_STEP = 20
"""Seeds of a run's bursts: ``seed``, ``seed + 20``, … (the paced runs take ``seed + 1, 2``)."""


@dataclass
class Phase:
    """Events published (as fast as Kafka takes them, or at a rate) until every one was
    applied, and what the platform did meanwhile."""

    events: int
    seconds: float
    processes: dict[str, dict[str, float]]
    machine_pct: float | None
    costs: dict[str, Any]
    sent: Sent

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


async def run_phase(
    platform: Platform,
    mongo: Clients,
    pids: dict[str, int],
    events: list[Envelope],
    rate: float | None,
    progress: Progress,
    label: str,
) -> Phase:
    """Publish ``events`` (``rate`` None: a burst) and wait until the platform drained them."""
    bootstrap = platform.servers.kafka_bootstrap
    counters = await command_counters(platform)
    watch = ProcessWatch(pids)
    watch.start()
    sent = Sent()
    t0 = time.perf_counter()
    await publish_events(bootstrap, events, rate, progress, label, sent)
    done = await drained(bootstrap, mongo, timeout=1800)
    processes = await watch.stop()
    costs = cost_per_event(counters, await command_counters(platform), len(events))
    return Phase(len(events), done - t0, processes, watch.machine_pct, costs, sent)


async def one_paced_run(
    platform: Platform,
    mongo: Clients,
    pids: dict[str, int],
    events: list[Envelope],
    rate: float,
    progress: Progress,
    label: str,
) -> dict[str, Any]:
    """Events published at ``rate``: their latencies, and what the platform did meanwhile.

    The costs and CPU say why a latency is what it is: at a share of the burst's rate the
    consumers find a few records per poll, so each batch's fixed round trips weigh on every
    record (a burst's batches hold a hundred), and the same events can take more of the CPU
    than the share suggests.
    """
    phase = await run_phase(platform, mongo, pids, events, rate, progress, label)
    await settle(platform.servers.kafka_bootstrap, mongo)
    return {
        "rate": round(rate, 1),
        **await latencies(mongo, phase.sent),
        "costs": phase.costs,
        "cpu_pct_of_one_core": round(
            sum(p["cpu_pct_of_one_core"] for p in phase.processes.values()), 1
        ),
        "machine_cpu_pct_of_one_core": phase.machine_pct,
        "processes": phase.processes,
    }


async def end_to_end(
    platform: Platform,
    replicas: int,
    plan: BenchPlan,
    progress: Progress,
    *,
    seed: int = 1,
    paced_runs: bool = True,
    prefilled: int = 0,
) -> EndToEnd:
    """Drive the platform with demo events: sustained rate, then paced at 50% and 100%.

    The sustained rate is the median of ``plan.bursts`` bursts (other seeds, the same size),
    and the burst's processes and costs are that median burst's: one burst of a few seconds
    on a shared 2-core machine varied by a third between runs minutes apart.
    """
    bootstrap = platform.servers.kafka_bootstrap
    mongo = DatabaseClients.of(platform)
    start = datetime.now(UTC) - timedelta(days=20)  # history: deadlines fall due, notices follow
    pids = {f"{sp.name}-{sp.replica}": sp.proc.pid for sp in platform.processes}
    for name, pid in platform.servers.mongo_pids.items():
        pids["mongodb" if name == "shared" else f"mongodb-{name}"] = pid
    kafka_pid = find_pid(str(platform.servers.data_dir / "kafka"))
    if kafka_pid:
        pids["kafka"] = kafka_pid
    pids["bench-driver"] = os.getpid()  # it shares the machine: publishing, polling lag
    trimmed = 0

    async def trim() -> None:
        nonlocal trimmed
        if not plan.keep_records:
            trimmed += await trim_consumed(bootstrap, list(SERVICES))

    try:
        await wait_groups_stable(bootstrap, list(SERVICES), replicas)
        bursts: list[Phase] = []
        for n in range(plan.bursts):
            label = f"{replicas}× burst" + (f" {n + 1}/{plan.bursts}" if plan.bursts > 1 else "")
            label += f" ({prefilled:,} docs in every collection)" if prefilled else ""
            events = plan.demo_events(seed=seed + BURST_SEED_STEP * n, start=start)
            await trim()
            bursts.append(await run_phase(platform, mongo, pids, events, None, progress, label))
            # the burst's timers must not spill into the next burst or the paced runs
            await settle(bootstrap, mongo)
        middle = sorted(bursts, key=lambda b: b.events_per_s)[len(bursts) // 2]
        sustained = middle.events_per_s
        paced: list[dict[str, Any]] = []
        for paced_seed, share in ((seed + 1, 0.5), (seed + 2, 1.0)) if paced_runs else ():
            events = plan.demo_events(seed=paced_seed, start=start)
            rate = sustained * share
            label = f"{replicas}× paced {share:.0%}"
            await trim()
            run = await one_paced_run(platform, mongo, pids, events, rate, progress, label)
            paced.append({"share": share, **run})
        cpus = os.cpu_count() or 1
        return EndToEnd(
            replicas,
            middle.events,
            round(sustained, 1),
            paced,
            middle.processes,
            middle.machine_pct,
            explain_limit(middle.processes, cpus, middle.machine_pct),
            middle.costs,
            prefilled,
            [round(b.events_per_s, 1) for b in bursts],
            trimmed,
        )
    finally:
        await mongo.close()


# ------------------------------------------------------------------ catch-up and a full database


@dataclass
class CatchUp:
    """A backlog published while no service ran, then drained by the starting platform."""

    events: int
    seconds_from_start: float
    """From starting the services (start-up included) until the platform went quiet."""
    seconds_from_ready: float
    """From every service answering ready until the platform went quiet."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds_from_ready if self.seconds_from_ready else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_s": round(self.events_per_s, 1)}


def catch_up(platform: Platform, plan: BenchPlan, progress: Progress) -> CatchUp:
    """Publish ``plan.backlog`` demo events with every service down, start them, time the drain."""
    start = datetime.now(UTC) - timedelta(days=20)
    groups = math.ceil(plan.backlog / EVENTS_PER_GROUP) + 1
    backlog = [e for _, e in DemoGenerator(seed=9, start=start).events(3 * groups, groups)][
        : plan.backlog
    ]
    bootstrap = platform.servers.kafka_bootstrap
    asyncio.run(publish_events(bootstrap, backlog, None, progress, "backlog", Sent()))
    t0 = time.perf_counter()
    platform.start_services(timeout=300)
    ready = time.perf_counter()

    async def drain() -> float:
        mongo = DatabaseClients.of(platform)
        try:
            return await drained(bootstrap, mongo, timeout=3600)
        finally:
            await mongo.close()

    done = asyncio.run(drain())
    return CatchUp(len(backlog), round(done - t0, 2), round(done - ready, 2))


FILLER_BATCH = 1000


def filler(collection: str, i: int, far: datetime, unique: Sequence[str] = ()) -> Document:
    """A document that sits in ``collection`` without taking part in what runs: a timer due
    in a far future, a sent outbox entry, an old inbox id; elsewhere an entity of no district.
    Fields of a unique index get the document's own id."""
    doc: Document = {"_id": f"bench-fill-{i}", "bench_filler": True}
    doc.update({field: doc["_id"] for field in unique})
    if collection == "timers":
        doc.update(kind="bench.filler", status="pending", due=far, next_at=far, payload={})
    elif collection == "outbox":
        doc.update(topic="bench.filler", seq=i, sent_at=far - timedelta(days=36500))
    return doc


async def prefill(platform: Platform, per_collection: int, progress: Progress) -> int:
    """Bring every collection of every service database to ``per_collection`` documents.

    The databases fill side by side (each service has its own SecantusDB: one process per
    core instead of one in turn); within one, collection after collection.
    """
    mongo = DatabaseClients.of(platform)
    far = datetime(2199, 1, 1, tzinfo=UTC)
    try:
        targets: dict[str, list[tuple[str, int]]] = {}
        for db_name in SERVICE_DBS.values():
            for name in await mongo[db_name][db_name].list_collection_names():
                have = await mongo[db_name][db_name][name].estimated_document_count()
                if have < per_collection:
                    targets.setdefault(db_name, []).append((name, per_collection - have))
        task = progress.add_task(
            f"prefill to {per_collection:,} per collection",
            total=sum(missing for wanted in targets.values() for _, missing in wanted),
        )

        async def fill(db_name: str, wanted: list[tuple[str, int]]) -> None:
            for name, missing in wanted:
                coll = mongo[db_name][db_name][name]
                unique = sorted(
                    {
                        field
                        for index in (await coll.index_information()).values()
                        if index.get("unique")
                        for field, _ in index["key"]
                        if field != "_id"
                    }
                )
                for offset in range(0, missing, FILLER_BATCH):
                    upto = min(missing, offset + FILLER_BATCH)
                    docs = [filler(name, i, far, unique) for i in range(offset, upto)]
                    await coll.insert_many(docs, ordered=False)
                    progress.advance(task, len(docs))

        await asyncio.gather(*(fill(db, wanted) for db, wanted in targets.items()))
        return sum(len(wanted) for wanted in targets.values())
    finally:
        await mongo.close()


# ------------------------------------------------------------------ the run


EVENTS_PER_GROUP = 13
"""Demo events from three work orders and one case file (their updates, penalties, filings),
a little under the generator's average so that a group count always yields enough."""


@dataclass
class BenchPlan:
    replicas: list[int]
    n_orders: int
    n_cases: int
    raw_n: int
    events: int | None = None
    """Exact events per end-to-end phase (``--events``); None: whatever the counts give."""
    backlog: int = 10_000
    """Events published before the services start (the catch-up figure)."""
    bursts: int = 3
    """Bursts per end-to-end run; the sustained rate is their median (``--quick``: 1)."""
    keep_records: bool = False
    """Keep what every consumer committed on noida-db between phases (see ``trim_consumed``);
    by default it goes, and the raw baseline's topic with it."""
    prefill: int = 0
    """Documents in every collection for a last burst (flat query plans); 0: no such run.
    ``--prefill 100000`` writes 7.1 million documents into the platform's ~70 indexed
    collections; with the six databases filling side by side the whole run took 30 minutes
    here (the gateway's 22 collections are the long pole): a long form, not the default."""

    @classmethod
    def of(
        cls,
        replicas: list[int],
        quick: bool,
        events: int | None = None,
        backlog: int | None = None,
        prefill: int | None = None,
        bursts: int | None = None,
        keep_records: bool = False,
    ) -> BenchPlan:
        raw_n = 500 if quick else 5000
        sizes: dict[str, Any] = {
            "keep_records": keep_records,
            "backlog": backlog if backlog is not None else (300 if quick else 10_000),
            "prefill": prefill if prefill is not None else (2_000 if quick else 0),
            "bursts": bursts if bursts is not None else (1 if quick else 3),
        }
        if events is not None:
            groups = math.ceil(events / EVENTS_PER_GROUP) + 1
            return cls(replicas, 3 * groups, groups, raw_n=raw_n, events=events, **sizes)
        if quick:
            return cls(replicas, n_orders=15, n_cases=5, raw_n=raw_n, **sizes)
        return cls(replicas, n_orders=150, n_cases=50, raw_n=raw_n, **sizes)

    def demo_events(self, seed: int, start: datetime) -> list[Envelope]:
        """One phase's events in time order (cut to ``events`` when that is set)."""
        events = [
            e for _, e in DemoGenerator(seed=seed, start=start).events(self.n_orders, self.n_cases)
        ]
        return events if self.events is None else events[: self.events]


async def raw_baselines(
    platform: Platform, n: int, progress: Progress, *, keep_records: bool = False
) -> list[Rate]:
    bootstrap = platform.servers.kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("bench.raw", 6, 1)])
    finally:
        await admin.close()
    produced = await kafka_produce_rate(bootstrap, "bench.raw", n, progress)
    consumed = await kafka_consume_rate(bootstrap, "bench.raw", n, progress)
    if not keep_records:  # the raw topic's records would weigh on noida-db in every phase
        await empty_topic(bootstrap, "bench.raw")
    one, many = await mongo_rates(platform.servers.mongo_uri, n, progress)
    return [produced, consumed, one, many]


def run_bench(plan: BenchPlan, out: Path, work_dir: Path) -> BenchReport:
    """Start a platform per replica count on fresh embedded servers and measure it."""
    report = BenchReport(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "python": platform_module.python_version(),
            "system": platform_module.platform(),
        },
    )
    with Progress() as progress:
        for i, replicas in enumerate(plan.replicas):
            platform = Platform(
                work_dir / f"replicas-{replicas}",
                replicas=replicas,
                kafka_port=free_port(),
                mongo_port=free_port(),
                port_offset=free_port_offset(replicas),
                extra_env={"JIANDU_SESSION_TIMEOUT_MS": "6000", "JIANDU_LOG_LEVEL": "WARNING"},
                database_per_service=True,  # as ``jiandu run``: see devtools.embedded
            )
            platform.start_servers()
            try:
                if i == 0:
                    raw = asyncio.run(
                        raw_baselines(
                            platform, plan.raw_n, progress, keep_records=plan.keep_records
                        )
                    )
                    report.raw = [r.as_dict() for r in raw]
                    if plan.backlog:
                        report.catch_up = catch_up(platform, plan, progress).as_dict()
                if not platform.processes:
                    platform.start_services(timeout=300)
                result = asyncio.run(end_to_end(platform, replicas, plan, progress))
                report.end_to_end.append(asdict(result))
                if i == 0 and plan.prefill:
                    asyncio.run(prefill(platform, plan.prefill, progress))
                    full = asyncio.run(
                        end_to_end(
                            platform,
                            replicas,
                            plan,
                            progress,
                            seed=11,
                            paced_runs=False,
                            prefilled=plan.prefill,
                        )
                    )
                    report.end_to_end.append(asdict(full))
            finally:
                platform.stop()
    insert_one = next(r for r in report.raw if r["name"] == "mongo_insert_one")["per_second"]
    for run in report.end_to_end:
        run["ratio_to_mongo_insert_one"] = round(run["sustained_events_per_s"] / insert_one, 3)
    report.write(out)
    chart(report, out.with_suffix(".png"))
    return report


def chart(report: BenchReport, path: Path) -> None:
    """Sustained rate per replica count, and latency percentiles of the paced runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate_ax, lat_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    runs = report.end_to_end
    labels = [
        f"{r['replicas']} replica(s)"
        + (f"\n{r['prefilled']:,} docs/coll." if r["prefilled"] else "")
        for r in runs
    ]
    rate_ax.bar(labels, [r["sustained_events_per_s"] for r in runs], color="#3b6ea5")
    rate_ax.set_ylabel("events / s (ingest → last downstream change)")
    rate_ax.set_title("Sustained end-to-end throughput")
    width = 0.13
    x = 0.0
    ticks: list[float] = []
    names: list[str] = []
    for run in runs:
        for paced in run["paced"]:
            for j, (metric, color) in enumerate(
                (("ingest_to_routed", "#3b6ea5"), ("ingest_to_notice", "#c0504d"))
            ):
                stats = paced.get(metric) or {}
                values = [stats.get(p, 0) for p in ("p50", "p95", "p99")]
                lat_ax.bar(
                    [x + k + j * width for k in (0, 0.3, 0.6)],
                    values,
                    width=width,
                    color=color,
                    label=metric if x == 0 else None,
                )
            ticks.append(x + 0.3)
            names.append(f"{run['replicas']}× @{paced['share']:.0%}\np50 p95 p99")
            x += 1.2
    lat_ax.set_xticks(ticks, names, fontsize=7)
    lat_ax.set_ylabel("ms (log scale)")
    lat_ax.set_yscale("log")
    lat_ax.set_title("Latency at 50% and 100% of the sustained rate")
    lat_ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(report: BenchReport) -> Table:
    table = Table(title="Jiandu bench")
    for column in ("measure", "value"):
        table.add_column(column)
    for raw in report.raw:
        table.add_row(f"raw {raw['name']}", f"{raw['per_second']:.0f} /s")
    if report.catch_up:
        c = report.catch_up
        table.add_row(
            f"catch-up of {c['events']:,} events",
            f"{c['events_per_s']:.0f} events/s ({c['seconds_from_ready']:.1f} s after ready,"
            f" {c['seconds_from_start']:.1f} s with start-up)",
        )
    for run in report.end_to_end:
        r = f"{run['replicas']}×" + (f" +{run['prefilled'] // 1000}k" if run["prefilled"] else "")
        bursts = run.get("bursts") or []
        table.add_row(
            f"{r} sustained",
            f"{run['sustained_events_per_s']:.1f} events/s"
            + (f" (median of {', '.join(f'{b:.1f}' for b in bursts)})" if len(bursts) > 1 else ""),
        )
        table.add_row(f"{r} ÷ mongo insert_one", f"{run['ratio_to_mongo_insert_one']:.3f}")
        costs = run.get("costs") or {}
        if costs:
            table.add_row(
                f"{r} MongoDB per event",
                f"{costs['commands_per_event']:.2f} commands, "
                f"{costs['documents_per_event']:.2f} documents written",
            )
            for name, row in costs["services"].items():
                table.add_row(
                    f"  {name}",
                    f"{row['commands']:.2f} cmd ({_top(row['commands_by_name'])}), "
                    f"{row['documents']:.2f} docs"
                    + (
                        f"; {row['batches']} batches of {row['records_per_batch']:.0f} records,"
                        f" {row['ms_per_batch']:.0f} ms each"
                        if row.get("batches")
                        else ""
                    ),
                )
        for paced in run["paced"]:
            for metric in ("ingest_to_routed", "ingest_to_notice"):
                stats = paced.get(metric) or {}
                if stats:
                    table.add_row(
                        f"{r} @{paced['share']:.0%} {metric}",
                        " / ".join(f"{p} {stats[p]:.0f}" for p in ("p50", "p95", "p99")) + " ms",
                    )
            if paced.get("costs"):
                table.add_row(f"{r} @{paced['share']:.0%} work", paced_work(paced))
        ours = sum(p["cpu_pct_of_one_core"] for p in run["processes"].values())
        machine = run.get("machine_cpu_pct_of_one_core")
        whole = f" of the machine's {machine:.0f}%" if machine is not None else ""
        table.add_row(f"{r} burst CPU", f"{ours:.0f}% of one core{whole}")
        table.add_row(f"{r} limit", run["limit"])
    return table


def paced_work(paced: dict[str, Any]) -> str:
    """What a paced run cost: CPU, commands per event, and each consumer's batches."""
    costs = paced["costs"]
    batches = ", ".join(
        f"{name} {row['records_per_batch']:.0f} in {row['ms_per_batch']:.0f} ms"
        for name, row in costs["services"].items()
        if row.get("batches")
    )
    return (
        f"{paced['rate']:.0f} events/s took {paced['cpu_pct_of_one_core']:.0f}% of one core,"
        f" {costs['commands_per_event']:.2f} commands per event; records per batch: {batches}"
    )


def _top(by_name: dict[str, float], n: int = 3) -> str:
    """The costliest commands, e.g. ``find 0.21, insert 0.12, update 0.05``."""
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {v:.2f}" for name, v in ranked)
