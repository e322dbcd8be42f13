"""``jiandu run`` (what ``make run`` calls) reaches all-ready and every way of stopping it
leaves nothing behind: Ctrl-C, SIGINT to a runner that inherited SIGINT ignored, and SIGKILL
(its services die with it; the next run stops what is left under the data folder)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from devtools.embedded import free_port
from devtools.processes import live_pid
from devtools.runner import free_port_offset, stop_leftovers
from shared.registry import SERVICES

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_run_reaches_all_ready_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _run_until_ready_then_interrupt(data, demo=True)
    marker = data / "mongo" / "reused"
    marker.touch()
    # A second run reuses the data folder; started the way a script's `cmd &` starts it, with
    # SIGINT ignored, it still stops on SIGINT (the runner installs its own handler).
    _run_until_ready_then_interrupt(data, demo=False, sigint_ignored=True)
    assert marker.exists()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_services_die_with_a_killed_runner_and_the_next_run_stops_the_rest(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    proc, kafka, mongo, offset = _start_until_ready(data, demo=False)
    try:
        pid_files = sorted((data / "run").glob("*.pid"))
        names = {p.stem for p in pid_files}
        mongos = {f"secantus-{n}" for n in SERVICES if n != "gateway"}  # the gateway's: "secantus"
        assert {f"{n}-0" for n in SERVICES} | {"runner", "secantus"} | mongos <= names
        children = {p.stem: live_pid(p) for p in pid_files if p.stem != "runner"}
        assert all(children.values()), children
        assert json.loads((data / "platform.json").read_text())["mongo_uri"].endswith(
            f":{mongo}/?retryWrites=false&directConnection=true"
        )  # the gateway's database, where ``jiandu keys`` writes
        ports = _mongo_ports(data)
        proc.kill()  # SIGKILL: no handler, no cleanup in the runner
        proc.wait(10)
        deadline = time.monotonic() + 45
        alive = children
        while alive:
            alive = {n: pid for n, pid in alive.items() if live_pid(data / "run" / f"{n}.pid")}
            assert time.monotonic() < deadline, f"still running after the runner died: {alive}"
            time.sleep(0.2)
        for port in [*[s.port_of(0, offset) for s in SERVICES.values()], *ports.values()]:
            assert not _listening(port), f"port {port} still open after the runner died"
        assert _listening(kafka)  # noida-db daemonized: it is the next run's to stop
    finally:
        if proc.poll() is None:
            proc.kill()
        left = stop_leftovers(data)  # what `jiandu run` does first on this data folder
    assert not _listening(kafka)
    assert "runner" not in left  # a dead runner is not stopped again, nor taken for alive
    assert _leftovers(data) == []


def _mongo_ports(data: Path) -> dict[str, int]:
    """Each service's SecantusDB port, from the ``platform.json`` of the running platform."""
    uris = json.loads((data / "platform.json").read_text())["mongo_uris"]
    return {name: int(uri.split(":")[2].split("/")[0]) for name, uri in uris.items()}


def _hotline_took_events(data: Path) -> bool:
    uri = json.loads((data / "platform.json").read_text())["mongo_uris"]["hotline"]
    with MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
        return client["jiandu_hotline"]["inbox"].count_documents({}) > 0


def _start_until_ready(
    data: Path, *, demo: bool, sigint_ignored: bool = False
) -> tuple[subprocess.Popen[str], int, int, int]:
    """``jiandu run`` on free ports, once it printed all-ready: (process, kafka, mongo, offset)."""
    kafka, mongo = free_port(), free_port()
    offset = free_port_offset()
    env = dict(os.environ, JIANDU_LOG_JSON="true")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.cli",
            "run",
            "--data-dir",
            str(data),
            "--kafka-port",
            str(kafka),
            "--mongo-port",
            str(mongo),
            "--port-offset",
            str(offset),
            "--demo" if demo else "--no-demo",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    lines: list[str] = []
    assert proc.stderr is not None
    deadline = time.monotonic() + 180
    for line in proc.stderr:
        lines.append(line)
        if "all ready" in line:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("".join(lines))
    else:
        proc.wait()
        pytest.fail("jiandu run exited before all-ready:\n" + "".join(lines))
    return proc, kafka, mongo, offset


def _leftovers(data: Path) -> list[str]:
    return subprocess.run(
        ["pgrep", "-f", str(data)], capture_output=True, text=True, check=False
    ).stdout.split()


def _run_until_ready_then_interrupt(
    data: Path, *, demo: bool, sigint_ignored: bool = False
) -> None:
    proc, kafka, mongo, offset = _start_until_ready(data, demo=demo, sigint_ignored=sigint_ignored)
    try:
        ports = [s.port_of(0, offset) for s in SERVICES.values()]
        assert all(_listening(p) for p in ports)
        assert _listening(kafka) and _listening(mongo)
        assert (data / "kafka").is_dir() and (data / "mongo").is_dir()
        # database per service: a SecantusDB process each, the gateway's on --mongo-port
        mongos = _mongo_ports(data)
        assert set(mongos) == set(SERVICES) and len(set(mongos.values())) == len(SERVICES)
        assert mongos["gateway"] == mongo and all(_listening(p) for p in mongos.values())
        if demo:  # the live demo feed reaches the services: the console is alive
            deadline = time.monotonic() + 60
            while not _hotline_took_events(data):
                assert time.monotonic() < deadline, "no demo event reached the hotline in 60 s"
                time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=90)[1]
    assert proc.returncode == 0, rest
    for port in [*[s.port_of(0, offset) for s in SERVICES.values()], kafka, *mongos.values()]:
        assert not _listening(port), f"port {port} still open after Ctrl-C"
    leftovers = _leftovers(data)
    assert leftovers == [], f"processes left behind: {leftovers}"
    assert list((data / "run").glob("*.pid")) == [] and not (data / "platform.json").exists()
