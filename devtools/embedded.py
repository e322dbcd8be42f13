"""The embedded default: noida-db (Kafka protocol) and SecantusDB (MongoDB protocol).

Both run as separate processes with their data under one folder. Used by ``jiandu run``
(``make run``), by the test suite (on free ports) and by the benchmark.

``jiandu run`` and the bench give every service a SecantusDB process of its own (database
per service; ``EmbeddedServers.databases``). SecantusDB is one Python process, so one server
uses at most one core, and it keeps every index entry of every database in ONE WiredTiger
table whose update rewrites all of a document's entries: six services sharing it contend on
the same B-tree, and a statement that waits in WiredTiger's page-in holds its transaction's
lock, which SecantusDB's transaction registry takes on every statement of every session, so
the whole server stops for seconds at a time (measured: 4 to 20 s stalls in about half of
the 3,000-event catch-ups on one server; none on six). The tests keep one shared server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.protocol.group import LeaveGroupRequest
from pymongo import AsyncMongoClient

from devtools.processes import die_with_parent
from shared.outbox import OUTBOX
from shared.timers import TIMERS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def mongo_uri_of(port: int) -> str:
    # SecantusDB is slow with retryable writes; they must be off for it.
    return f"mongodb://127.0.0.1:{port}/?retryWrites=false&directConnection=true"


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def _noida() -> str:
    found = shutil.which(
        "noida-db", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    if not found:
        raise RuntimeError("noida-db is not installed (pip install noida-db)")
    return found


@dataclass
class EmbeddedServers:
    """noida-db + SecantusDB under ``data_dir`` (``kafka/``, and ``mongo/`` for one shared
    server or ``mongo/<service>/`` for one server per service)."""

    data_dir: Path
    kafka_port: int = 9092
    mongo_port: int = 27017
    """The shared server, or with ``databases`` the first one's."""
    log_dir: Path | None = None
    tie_to_parent: bool = False
    """SecantusDB gets SIGTERM when the thread that started it dies (``jiandu run``)."""
    databases: list[str] = field(default_factory=list)
    """Services that get a SecantusDB of their own (the first on ``mongo_port``, the others
    on the ports after it when free); empty: one server for all."""
    _mongos: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _ports: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        taken = {self.mongo_port, self.kafka_port}
        for i, name in enumerate(self.databases):
            port = self.mongo_port + i
            if i and (port in taken or not bindable(port)):
                port = free_port()
            taken.add(port)
            self._ports[name] = port

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        """The shared server, or the first service's own (``jiandu keys``, raw baselines)."""
        return mongo_uri_of(self.mongo_port)

    def mongo_uri_for(self, service: str) -> str:
        """The server holding ``service``'s database."""
        return mongo_uri_of(self._ports.get(service, self.mongo_port))

    @property
    def mongo_uris(self) -> dict[str, str]:
        """Every server's URI by what it holds (``"shared"`` for the one shared server)."""
        if not self._ports:
            return {"shared": self.mongo_uri}
        return {name: mongo_uri_of(port) for name, port in self._ports.items()}

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.start_kafka()
        self.start_mongo()

    def start_kafka(self) -> None:
        kafka_dir = self.data_dir / "kafka"
        kafka_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                _noida(),
                "up",
                "--data-dir",
                str(kafka_dir),
                "--only",
                "kafka",
                "--kafka-port",
                str(self.kafka_port),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.kafka_port)

    def stop_kafka(self) -> None:
        subprocess.run(
            [_noida(), "down", "--data-dir", str(self.data_dir / "kafka")],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def mongo_pids(self) -> dict[str, int]:
        """Every SecantusDB process by what it holds (as :attr:`mongo_uris`)."""
        return {name: proc.pid for name, proc in self._mongos.items()}

    def start_mongo(self) -> None:
        servers = {n: (p, self.data_dir / "mongo" / n) for n, p in self._ports.items()} or {
            "shared": (self.mongo_port, self.data_dir / "mongo")
        }
        for name, (port, storage) in servers.items():
            storage.mkdir(parents=True, exist_ok=True)
            suffix = "" if name == "shared" else f"-{name}"
            log = open((self.log_dir or self.data_dir) / f"secantus{suffix}.log", "ab")
            self._mongos[name] = subprocess.Popen(
                [sys.executable, "-m", "secantus", "--port", str(port), "--storage-path", storage],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(os.getpid()) if self.tie_to_parent else None,
            )
        for name, (port, _) in servers.items():
            wait_for_port(port, proc=self._mongos[name])

    def stop_mongo(self) -> None:
        for proc in self._mongos.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._mongos.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._mongos.clear()

    def stop(self) -> None:
        self.stop_mongo()
        self.stop_kafka()


async def evict_group_members(bootstrap: str, client_id: str) -> list[tuple[str, str]]:
    """Remove a dead replica's members (those with ``client_id``) from every consumer group.

    noida-db never expires a member that stopped heartbeating, so a group whose member died
    would wait for it forever; Apache Kafka does this itself after the session timeout. The
    runner, which sees its child processes die, sends the LeaveGroup on the dead one's behalf.
    Returns the (group, member id) pairs removed.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    removed: list[tuple[str, str]] = []
    try:
        groups = [str(g[0]) for g in await admin.list_consumer_groups()]
        for name in groups:
            # one group per request: noida-db's reply for several at once does not decode
            for group in (await admin.describe_consumer_groups([name]))[0].groups:
                dead = [m[0] for m in group[5] if m[1] == client_id]
                if not dead:
                    continue
                coordinator = await admin.find_coordinator(name)
                for member_id in dead:
                    await admin._client.send(coordinator, LeaveGroupRequest(name, member_id))
                    removed.append((name, member_id))
    finally:
        await admin.close()
    return removed


async def wait_groups_stable(
    bootstrap: str, groups: list[str], members: int, timeout: float = 60.0
) -> None:
    """Until every group has ``members`` members and is ``Stable`` (assigned): a phase that
    starts while replicas still join is re-applied after the rebalance and measures that."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            unsettled = {}
            # one group per request: noida-db's reply for several does not decode
            for name in groups:
                group = (await admin.describe_consumer_groups([name]))[0].groups[0]
                if group[2] != "Stable" or len(group[5]) < members:
                    unsettled[name] = (group[2], len(group[5]))
            if not unsettled:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer groups not stable after {timeout:.0f}s: {unsettled}")
            await asyncio.sleep(0.25)
    finally:
        await admin.close()


async def _lags(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, groups: list[str], prefix: str = ""
) -> dict[str, int]:
    """Per group (a service's name; its group and topics carry ``prefix``): records on its
    topics it has not committed past.

    Every partition of the topics a service consumes counts, committed or not: a group that
    has not committed on a partition yet (batches commit once, when they are done) lags by
    everything there, not by nothing.
    """
    from shared.topics import CONSUMES

    lags: dict[str, int] = {}
    for group in groups:
        committed = await admin.list_consumer_group_offsets(prefix + group)
        partitions = set(committed)
        for topic in CONSUMES.get(group, ()):
            name = prefix + topic.name
            for p in consumer.partitions_for_topic(name) or await _partitions(consumer, name):
                partitions.add(TopicPartition(name, p))
        if not partitions:
            lags[group] = 0
            continue
        ends = await consumer.end_offsets(list(partitions))
        starts = await consumer.beginning_offsets(list(partitions))
        lags[group] = sum(
            max(0, ends[tp] - (committed[tp].offset if tp in committed else starts[tp]))
            for tp in partitions
        )
    return lags


async def trim_consumed(bootstrap: str, groups: list[str], prefix: str = "") -> int:
    """Delete the records that every group consuming their topic has committed past; returns
    how many went.

    For the benchmark, between its phases: noida-db keeps its whole state in one file that it
    writes again as records arrive, so its CPU per request grows with the records it holds
    (measured: 0.6% of a core for 50 records/s when empty, 22% after 30,000 records), which
    Apache Kafka's segment files do not. Only what every consumer of a topic has committed
    goes, as a broker's retention would let go of it sooner or later; a partition that some
    consumer has not committed on, and topics no service consumes (dead letters), stay whole.
    """
    from shared.topics import CONSUMES

    consumers: dict[str, list[str]] = {}
    for group in groups:
        for topic in CONSUMES.get(group, ()):
            consumers.setdefault(prefix + topic.name, []).append(prefix + group)
    async with _lag_clients(bootstrap) as (admin, consumer):
        committed = {
            g: await admin.list_consumer_group_offsets(g)
            for g in {g for gs in consumers.values() for g in gs}
        }
        upto: dict[TopicPartition, int] = {}
        for name, readers in consumers.items():
            for p in consumer.partitions_for_topic(name) or await _partitions(consumer, name):
                tp = TopicPartition(name, p)
                offsets = [committed[g][tp].offset if tp in committed[g] else -1 for g in readers]
                if min(offsets) > 0:
                    upto[tp] = min(offsets)
        if not upto:
            return 0
        starts = await consumer.beginning_offsets(list(upto))
        upto = {tp: o for tp, o in upto.items() if o > starts[tp]}
        if upto:
            await admin.delete_records(
                {tp: RecordsToDelete(o) for tp, o in upto.items()}, timeout_ms=30_000
            )
        return sum(o - starts[tp] for tp, o in upto.items())


async def empty_topic(bootstrap: str, topic: str) -> None:
    """Delete every record of ``topic`` (its offsets stay: the next record takes the next one);
    the benchmark's raw topic once measured (see :func:`trim_consumed` for why)."""
    async with _lag_clients(bootstrap) as (admin, consumer):
        partitions = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
        ends = await consumer.end_offsets(partitions)
        await admin.delete_records({tp: RecordsToDelete(o) for tp, o in ends.items()}, 30_000)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions, asking the broker when the client's metadata lacks them."""
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


@asynccontextmanager
async def _lag_clients(
    bootstrap: str,
) -> AsyncIterator[tuple[AIOKafkaAdminClient, AIOKafkaConsumer]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        yield admin, consumer
    finally:
        await consumer.stop()
        await admin.close()


async def group_lags(bootstrap: str, groups: list[str]) -> dict[str, int]:
    """Per group, the sum of (end offset − committed offset) on the topics it consumes."""
    async with _lag_clients(bootstrap) as (admin, consumer):
        return await _lags(admin, consumer, groups)


Clients = AsyncMongoClient[Any] | Mapping[str, AsyncMongoClient[Any]]
"""One client for every database, or a client per database name (one server per service)."""


def client_of(mongo: Clients, db: str) -> AsyncMongoClient[Any]:
    return mongo if isinstance(mongo, AsyncMongoClient) else mongo[db]


async def wait_drained(
    bootstrap: str,
    mongo: Clients,
    groups: list[str],
    dbs: list[str],
    *,
    timeout: float,
    interval: float = 0.25,
    prefix: str = "",
) -> float:
    """Until no group lags, no outbox entry waits and no due timer is left to fire, twice in a
    row (a relay feeds consumers; a timer's handler feeds the outbox). ``groups``: service
    names, their groups and topics under ``prefix``.

    Returns when the quiet began (``time.perf_counter``). Used by the system tests and the
    benches; the Kafka clients stay open across the polls.
    """
    deadline = time.perf_counter() + timeout
    quiet_since: float | None = None
    async with _lag_clients(bootstrap) as (admin, consumer):
        while True:
            lags = await _lags(admin, consumer, groups, prefix)
            pending = {
                d: await client_of(mongo, d)[d][OUTBOX].count_documents({"sent_at": None})
                for d in dbs
            }
            due = {"status": "pending", "next_at": {"$lte": datetime.now(UTC)}}
            for d in dbs:  # the work events cause counts too: their timers that fell due
                pending[f"{d}.timers"] = await client_of(mongo, d)[d][TIMERS].count_documents(due)
            busy = {k: v for k, v in {**lags, **pending}.items() if v}
            now = time.perf_counter()
            if busy:
                quiet_since = None
            elif quiet_since is not None:
                return quiet_since
            else:
                quiet_since = now
            if now > deadline:
                raise TimeoutError(f"not drained after {timeout:.0f}s: still busy {busy}")
            await asyncio.sleep(interval)
