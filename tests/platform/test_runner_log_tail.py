"""A replica that exits says why on the runner's console (a bench's logs are gone after it)."""

from __future__ import annotations

from pathlib import Path

from devtools.runner import log_tail


def test_the_last_lines_of_an_exited_replicas_log(tmp_path: Path) -> None:
    log = tmp_path / "penalty-1.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)) + "Application startup failed.\n")
    tail = log_tail(log, lines=3).splitlines()
    assert tail == ["  | line 38", "  | line 39", "  | Application startup failed."]


def test_a_missing_log_is_said_so(tmp_path: Path) -> None:
    assert log_tail(tmp_path / "gone.log").startswith("(no log:")
