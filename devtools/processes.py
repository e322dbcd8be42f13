"""Child processes that die with the process that started them, and pid files that name them.

Used by ``jiandu run`` (``devtools.runner``) and the embedded servers it starts. A pid file
holds the pid and the process's start time, so a recycled pid is never taken for the
process it once named.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``signum`` when ``parent`` (the runner) dies."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the runner died before prctl took effect
            os.kill(os.getpid(), signum)

    return preexec


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (with the pid: one process).

    None when there is no such process, or only its zombie (it has exited).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])


def write_pid_file(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "start": start_time(pid)}))


def live_pid(path: Path) -> int | None:
    """The pid a pid file names, if that very process (same start time) still runs."""
    try:
        record = json.loads(path.read_text())
        pid, start = int(record["pid"]), record.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now = start_time(pid)
    return pid if now is not None and now == start else None
