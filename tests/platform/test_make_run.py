"""``jiandu run`` (what ``make run`` calls) reaches all-ready and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from shared.embedded import free_port
from shared.runner import SERVICES, free_port_offset

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
    _run_until_ready_then_interrupt(data, demo=False)  # a second run reuses the data folder
    assert marker.exists()


def _hotline_took_events(mongo_port: int) -> bool:
    uri = f"mongodb://127.0.0.1:{mongo_port}/?retryWrites=false&directConnection=true"
    with MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
        return client["jiandu_hotline"]["inbox"].count_documents({}) > 0


def _run_until_ready_then_interrupt(data: Path, *, demo: bool) -> None:
    kafka, mongo = free_port(), free_port()
    offset = free_port_offset()
    env = dict(os.environ, JIANDU_LOG_JSON="true")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.cli",
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
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 180
        for line in proc.stderr:
            lines.append(line)
            if "all ready" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            pytest.fail("jiandu run exited before all-ready:\n" + "".join(lines))
        ports = [p + offset for p in SERVICES.values()]
        assert all(_listening(p) for p in ports)
        assert _listening(kafka) and _listening(mongo)
        assert (data / "kafka").is_dir() and (data / "mongo").is_dir()
        if demo:  # the live demo feed reaches the services: the console is alive
            deadline = time.monotonic() + 60
            while not _hotline_took_events(mongo):
                assert time.monotonic() < deadline, "no demo event reached the hotline in 60 s"
                time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=90)[1]
    assert proc.returncode == 0, rest
    for port in [*[p + offset for p in SERVICES.values()], kafka, mongo]:
        assert not _listening(port), f"port {port} still open after Ctrl-C"
    leftovers = subprocess.run(
        ["pgrep", "-f", str(data)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == [], f"processes left behind: {leftovers}"
