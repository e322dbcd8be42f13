"""``jiandu run``: the whole platform on the embedded default, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from shared.embedded import EmbeddedServers, create_topics, evict_group_members
from shared.settings import kafka_client_id

SERVICES: dict[str, int] = {
    "gateway": 8000,
    "hotline": 8001,
    "casereview": 8002,
    "penalty": 8003,
    "notify": 8004,
}
"""Service → HTTP port of its first replica; replica r listens on port + 100·r."""

EMBEDDED_FETCH_WAIT_MS = 100
"""noida-db answers empty fetches at once; see ``shared.embedded.emulate_fetch_wait``."""

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


def free_port_offset(replicas: int = 2) -> int:
    """An HTTP port offset whose service ports are free and below the ephemeral range.

    A fixed block would collide with another platform on the machine (a test run, a second
    bench); ports in the ephemeral range can be taken by any outgoing connection meanwhile.
    """

    def bindable(port: int) -> bool:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    for _ in range(100):
        offset = random.randint(20, 230) * 100  # highest port 8004 + 23 000 + 300 < 32 768
        ports = (p + offset + 100 * r for p in SERVICES.values() for r in range(replicas))
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
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.replicas = replicas
        self.servers = EmbeddedServers(self.data_dir, kafka_port=kafka_port, mongo_port=mongo_port)
        self.port_offset = port_offset
        self.extra_env = extra_env or {}
        self.services = services or list(SERVICES)
        self.processes: list[ServiceProcess] = []
        self.log_dir = self.data_dir / "logs"

    def env_for(self, name: str, replica: int, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "JIANDU_KAFKA_BOOTSTRAP": self.servers.kafka_bootstrap,
                "JIANDU_MONGO_URI": self.servers.mongo_uri,
                "JIANDU_HTTP_PORT": str(port),
                "JIANDU_INSTANCE_ID": f"{name}-{replica}",
                "JIANDU_PEERS": ",".join(
                    f"{n}=http://127.0.0.1:{p + self.port_offset}" for n, p in SERVICES.items()
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
        port = SERVICES[name] + self.port_offset + 100 * replica
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}-{replica}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=self.env_for(name, replica, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        sp = ServiceProcess(name, replica, port, proc)
        self.processes.append(sp)
        return sp

    def start(self, timeout: float = 120.0) -> None:
        console.print(f"[bold]Jiandu[/] data folder: {self.data_dir}")
        self.servers.start()
        console.print(
            f"  Kafka (noida-db)   {self.servers.kafka_bootstrap}\n"
            f"  MongoDB (Secantus) {self.servers.mongo_uri}"
        )
        console.print(
            "  [yellow]embedded default: Kafka and MongoDB without authentication, the built-in"
            " token secret, every port on 127.0.0.1 only (production: docker-compose.yml,"
            " deploy/k8s)[/]"
        )
        topics = asyncio.run(create_topics(self.servers.kafka_bootstrap))
        console.print(f"  topics: {len(topics)} ready")
        for replica in range(self.replicas):
            for name in self.services:
                self.start_service(name, replica)
        self.wait_ready(timeout)

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
            console.print(
                f"{sp.name}-{sp.replica} exited ({sp.proc.returncode}); restarting "
                f"(log: {self.log_dir / f'{sp.name}-{sp.replica}.log'})",
                style="yellow",
            )
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
    )
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        platform.start()
        platform.print_urls()
        from shared.demo_feed import run_feed_forever

        run_feed_forever(platform, demo=demo)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        platform.stop()
