"""``jiandu run``: the whole platform on the embedded default, stopped cleanly by Ctrl-C.

Stops: the runner installs its own SIGINT and SIGTERM handlers (a runner started in the
background inherits SIGINT ignored). Every process it starts gets a parent-death signal
(``PR_SET_PDEATHSIG``: SIGTERM when the runner dies, even by SIGKILL) and a pid file under
``<data>/run/``; noida-db daemonizes and is stopped through its own data folder. A runner
that starts on a data folder a dead runner left behind stops what the pid files name (pid
and start time both checked, never by process name) before it starts anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from devtools.embedded import EmbeddedServers, bindable, evict_group_members
from devtools.processes import die_with_parent, live_pid, write_pid_file
from shared.kafka_admin import create_topics
from shared.registry import SERVICES
from shared.settings import kafka_client_id

EMBEDDED_FETCH_WAIT_MS = 100
"""The longest wait after an empty fetch: noida-db answers those at once (see
:func:`shared.kafka_fetch_wait.emulate_fetch_wait`)."""

DEMO_USERS = ",".join(
    [
        "admin:jiandu-admin:city_supervisor",
        "huangpu:jiandu-demo:district_supervisor:310101",
        "officer:jiandu-demo:unit_officer:310101:310101-cgzf",
        "reviewer:jiandu-demo:reviewer",
        "ops:jiandu-demo:operator",
    ]
)
"""Console logins ``make run`` creates when JIANDU_BOOTSTRAP_USERS is not set (local demo only)."""

console = Console(stderr=True)

PLATFORM_FILE = "platform.json"
"""Written into the data folder while the platform runs (``jiandu keys`` reads it)."""


def stop_leftovers(data_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stop what a dead runner left under ``data_dir`` (pid files; noida-db by its folder).

    Raises when a runner is still alive on this folder: two platforms cannot share it.
    """
    data_dir = data_dir.resolve()
    runner = live_pid(data_dir / "run" / "runner.pid")
    if runner is not None and runner != os.getpid():
        raise RuntimeError(f"a jiandu runner (pid {runner}) already runs on {data_dir}")
    stopped: list[str] = []
    pids: dict[int, Path] = {}
    for path in sorted((data_dir / "run").glob("*.pid")):
        pid = live_pid(path)
        if pid is not None and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                pids[pid] = path
                stopped.append(path.stem)
        else:
            path.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    for pid, path in pids.items():
        while live_pid(path) == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if live_pid(path) == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        path.unlink(missing_ok=True)
    if (data_dir / "kafka").is_dir():
        EmbeddedServers(data_dir).stop_kafka()  # noida-db finds its daemon by its data folder
    (data_dir / PLATFORM_FILE).unlink(missing_ok=True)
    return stopped


def log_tail(path: Path, lines: int = 8) -> str:
    """The last ``lines`` lines of a replica's log (what it said before it exited)."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16_384))
            tail = log.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(f"  | {line}" for line in tail)


def free_port_offset(replicas: int = 2) -> int:
    """An HTTP port offset whose service ports are free and below the ephemeral range.

    A fixed block would collide with another platform on the machine (a test run, a second
    bench); ports in the ephemeral range can be taken by any outgoing connection meanwhile.
    """

    for _ in range(100):
        offset = random.randint(20, 230) * 100  # highest port 8005 + 23 000 + 300 < 32 768
        ports = (s.port_of(r, offset) for s in SERVICES.values() for r in range(replicas))
        if all(bindable(port) for port in ports):
            return offset
    raise RuntimeError("no free block of service ports below the ephemeral range")


@dataclass
class ServiceProcess:
    name: str
    replica: int
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Platform:
    """Embedded servers plus every service as its own process."""

    def __init__(
        self,
        data_dir: Path,
        *,
        replicas: int = 1,
        kafka_port: int = 9092,
        mongo_port: int = 27017,
        port_offset: int = 0,
        extra_env: dict[str, str] | None = None,
        services: list[str] | None = None,
        tie_to_runner: bool = False,
        database_per_service: bool = False,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.replicas = replicas
        self.tie_to_runner = tie_to_runner
        """Processes get a parent-death signal; only for a runner that starts them all from
        its main thread (the signal follows the thread that forked, not the process)."""
        self.services = services or list(SERVICES)
        self.servers = EmbeddedServers(
            self.data_dir,
            kafka_port=kafka_port,
            mongo_port=mongo_port,
            tie_to_parent=tie_to_runner,
            databases=list(self.services) if database_per_service else [],
        )
        """``database_per_service``: a SecantusDB process per service (``jiandu run``, the
        bench); otherwise one shared by all (the tests): see :mod:`devtools.embedded`."""
        self.port_offset = port_offset
        self.extra_env = extra_env or {}
        self.processes: list[ServiceProcess] = []
        self.log_dir = self.data_dir / "logs"
        self.run_dir = self.data_dir / "run"

    def env_for(self, name: str, replica: int, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "JIANDU_KAFKA_BOOTSTRAP": self.servers.kafka_bootstrap,
                "JIANDU_MONGO_URI": self.servers.mongo_uri_for(name),
                "JIANDU_HTTP_PORT": str(port),
                "JIANDU_INSTANCE_ID": f"{name}-{replica}",
                "JIANDU_PEERS": ",".join(
                    f"{n}=http://127.0.0.1:{s.port_of(0, self.port_offset)}"
                    for n, s in SERVICES.items()
                ),
                "JIANDU_DATA_DIR": str(self.data_dir),
            }
        )
        env.setdefault("JIANDU_KAFKA_FETCH_WAIT_MS", str(EMBEDDED_FETCH_WAIT_MS))
        if name == "gateway":
            env.setdefault("JIANDU_BOOTSTRAP_USERS", DEMO_USERS)
        env.update(self.extra_env)
        return env

    def start_service(self, name: str, replica: int) -> ServiceProcess:
        port = SERVICES[name].port_of(replica, self.port_offset)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}-{replica}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", SERVICES[name].module],
            env=self.env_for(name, replica, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()) if self.tie_to_runner else None,
        )
        write_pid_file(self.run_dir / f"{name}-{replica}.pid", proc.pid)
        sp = ServiceProcess(name, replica, port, proc)
        self.processes.append(sp)
        return sp

    def start(self, timeout: float = 120.0) -> None:
        self.start_servers()
        self.start_services(timeout)

    def start_servers(self) -> None:
        """The embedded servers and the topics, no service yet (the bench fills a backlog)."""
        console.print(f"[bold]Jiandu[/] data folder: {self.data_dir}")
        left = stop_leftovers(self.data_dir)
        if left:
            console.print(f"  stopped what a previous run left: {', '.join(left)}")
        write_pid_file(self.run_dir / "runner.pid", os.getpid())
        self.servers.start()
        for i, (name, pid) in enumerate(self.servers.mongo_pids.items()):
            stem = "secantus" if i == 0 else f"secantus-{name}"  # the first: shared or gateway
            write_pid_file(self.run_dir / f"{stem}.pid", pid)
        mongos = "\n".join(
            f"  MongoDB (Secantus) {uri}" + ("" if name == "shared" else f"  ({name})")
            for name, uri in self.servers.mongo_uris.items()
        )
        console.print(f"  Kafka (noida-db)   {self.servers.kafka_bootstrap}\n{mongos}")
        console.print(
            "  [yellow]embedded default: Kafka and MongoDB without authentication, the built-in"
            " token secret, every port on 127.0.0.1 only (production: docker-compose.yml,"
            " deploy/k8s)[/]"
        )
        topics = asyncio.run(create_topics(self.servers.kafka_bootstrap))
        console.print(f"  topics: {len(topics)} ready")

    def start_services(self, timeout: float = 120.0) -> None:
        for replica in range(self.replicas):
            for name in self.services:
                self.start_service(name, replica)
        self.wait_ready(timeout)
        self.write_platform_file()

    def write_platform_file(self) -> None:
        gateway = next((p for p in self.processes if p.name == "gateway"), None)
        info = {
            "runner_pid": os.getpid(),
            "mongo_uri": self.servers.mongo_uri_for("gateway"),  # what ``jiandu keys`` writes
            "mongo_uris": self.servers.mongo_uris,
            "kafka_bootstrap": self.servers.kafka_bootstrap,
            "gateway_url": gateway.url if gateway else None,
        }
        (self.data_dir / PLATFORM_FILE).write_text(json.dumps(info, indent=2))

    def kill(self, sp: ServiceProcess) -> None:
        """SIGKILL one replica (fault injection): no shutdown hooks run."""
        if sp.proc.poll() is None:
            sp.proc.kill()
        sp.proc.wait()
        self.processes.remove(sp)
        self.evict(sp)

    def stop_service(self, sp: ServiceProcess, timeout: float = 15.0) -> None:
        """SIGTERM one replica and wait: it finishes in-flight work and flushes its outbox."""
        if sp.proc.poll() is None:
            sp.proc.send_signal(signal.SIGTERM)
            try:
                sp.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                sp.proc.kill()
                sp.proc.wait()
        self.processes.remove(sp)
        self.evict(sp)

    def evict(self, sp: ServiceProcess) -> list[tuple[str, str]]:
        """Take a replica that is gone out of its consumer groups (see ``evict_group_members``)."""
        client_id = kafka_client_id(f"{sp.name}-{sp.replica}")
        return asyncio.run(evict_group_members(self.servers.kafka_bootstrap, client_id))

    def supervise(self) -> list[ServiceProcess]:
        """Restart replicas that died (what Kubernetes' restart policy does in production)."""
        restarted: list[ServiceProcess] = []
        for sp in list(self.processes):
            if sp.proc.poll() is None:
                continue
            log_path = self.log_dir / f"{sp.name}-{sp.replica}.log"
            console.print(
                f"{sp.name}-{sp.replica} exited ({sp.proc.returncode}); restarting "
                f"(log: {log_path})",
                style="yellow",
            )
            # why, here too: a bench's data folder (and its logs) is gone when it ends
            console.print(log_tail(log_path), style="dim", markup=False, highlight=False)
            self.processes.remove(sp)
            self.evict(sp)
            restarted.append(self.start_service(sp.name, sp.replica))
        return restarted

    def restart(self, sp: ServiceProcess, timeout: float = 120.0) -> ServiceProcess:
        if sp in self.processes:
            self.kill(sp)
        fresh = self.start_service(sp.name, sp.replica)
        self.wait_ready(timeout, [fresh])
        return fresh

    def wait_ready(
        self, timeout: float, only: list[ServiceProcess] | None = None, restarts: int = 2
    ) -> None:
        """Until every (given) replica answers ``/readyz``.

        A replica that exits while starting is restarted like ``supervise`` does, at most
        ``restarts`` times in all: on noida-db a consumer joining next to another replica can
        fail once on a group reply aiokafka cannot decode, and a second start joins cleanly.
        """
        deadline = time.monotonic() + timeout
        pending = list(only if only is not None else self.processes)
        with httpx.Client(timeout=2.0) as http:
            while pending:
                for sp in list(pending):
                    if sp.proc.poll() is not None:
                        log = self.log_dir / f"{sp.name}-{sp.replica}.log"
                        if restarts <= 0:
                            raise RuntimeError(
                                f"{sp.name}-{sp.replica} exited ({sp.proc.returncode}); see {log}"
                            )
                        restarts -= 1
                        pending.remove(sp)
                        pending.extend(self.supervise())
                        continue
                    try:
                        if http.get(f"{sp.url}/readyz").status_code == 200:
                            pending.remove(sp)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    names = ", ".join(f"{p.name}-{p.replica}" for p in pending)
                    raise TimeoutError(f"not ready after {timeout}s: {names}")
                if pending:
                    time.sleep(0.2)

    def print_urls(self) -> None:
        table = Table(title="Jiandu is ready (Ctrl-C stops everything)")
        table.add_column("service")
        table.add_column("replica")
        table.add_column("URL")
        for sp in self.processes:
            table.add_row(sp.name, str(sp.replica), sp.url)
        console.print(table)
        gateway = next((p for p in self.processes if p.name == "gateway"), None)
        if gateway:
            console.print(f"Console: {gateway.url}/console   API docs: {gateway.url}/docs")
            if "JIANDU_BOOTSTRAP_USERS" not in os.environ:
                logins = ", ".join(
                    f"{u.split(':')[0]}/{u.split(':')[1]} ({u.split(':')[2]})"
                    for u in DEMO_USERS.split(",")
                )
                console.print(f"Demo logins: {logins}")
        console.print("all ready", style="bold green")

    def stop(self) -> None:
        """Services first (SIGTERM, then SIGKILL after 15 s), then MongoDB and Kafka."""
        for sp in self.processes:
            if sp.proc.poll() is None:
                sp.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for sp in self.processes:
            try:
                sp.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                sp.proc.kill()
                sp.proc.wait()
        self.processes.clear()
        self.servers.stop()
        for path in self.run_dir.glob("*.pid"):
            path.unlink(missing_ok=True)
        (self.data_dir / PLATFORM_FILE).unlink(missing_ok=True)
        console.print("stopped", style="bold")


def run_platform(
    data_dir: Path,
    *,
    replicas: int = 1,
    kafka_port: int = 9092,
    mongo_port: int = 27017,
    port_offset: int = 0,
    demo: bool = True,
) -> None:
    platform = Platform(
        data_dir,
        replicas=replicas,
        kafka_port=kafka_port,
        mongo_port=mongo_port,
        port_offset=port_offset,
        tie_to_runner=True,
        database_per_service=True,
    )
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    # Our own handlers for both: a runner started in the background (``cmd &`` in a script)
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        platform.start()
        platform.print_urls()
        from devtools.demo_feed import run_feed_forever

        run_feed_forever(platform, demo=demo)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        platform.stop()
