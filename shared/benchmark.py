"""``jiandu bench`` (``make bench``): the platform under load on the embedded servers.

One run measures, on the same noida-db and SecantusDB:

* raw baselines: aiokafka produce and consume rates, MongoDB ``insert_one`` and
  ``insert_many`` rates;
* end to end: demo events published to the ingest topics as fast as the pipeline takes them
  (sustained rate = events / time until the last downstream state change), then paced at 50%
  and 100% of that rate for latency percentiles ingest→routed and ingest→notice;
* CPU seconds and peak RSS per service process (from ``/proc``);

and writes a JSON report plus a PNG chart. ``--replicas 1,2`` repeats the end-to-end part
with one and two replicas of every service, side by side.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.progress import Progress

from shared.mongo import make_client

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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
    """CPU seconds (user+system) and resident memory of ``pid``, read from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    cpu = (int(stat[11]) + int(stat[12])) / CLK_TCK
    rss_lines = (line for line in status.splitlines() if line.startswith("VmRSS"))
    rss_kb = next((int(line.split()[1]) for line in rss_lines), 0)
    return ProcessSample(cpu, rss_kb / 1024)


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

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2), encoding="utf-8")


async def with_timeout(awaitable: Awaitable[Any], seconds: float) -> Any:
    return await asyncio.wait_for(awaitable, seconds)


Probe = Callable[[], Awaitable[int]]
