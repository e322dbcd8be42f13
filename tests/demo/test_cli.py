"""``jiandu demo`` (the typer sub-app) writing its events to a file."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from devtools.demo.cli import app
from shared.contracts import validate_external
from shared.envelope import Envelope


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_command_writes_the_same_valid_events_for_the_same_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    common = ("--orders", "40", "--cases", "10", "--start", "2025-06-02T00:00:00")
    run("--seed", "5", *common, "--jsonl", str(first))
    run("--seed", "5", *common, "--jsonl", str(second))
    lines = first.read_text("utf-8").splitlines()
    assert lines == second.read_text("utf-8").splitlines()
    events = [Envelope.model_validate(json.loads(line)) for line in lines]
    assert len({e.partitionkey for e in events if e.type.endswith("created")}) == 40
    assert len([e for e in events if e.type.endswith("case.closed")]) == 10
    for event in events:
        validate_external(event)


def test_demo_mounts_as_a_jiandu_sub_command(tmp_path: Path) -> None:
    root = typer.Typer()
    root.command()(lambda: None)  # jiandu has other commands
    root.add_typer(app, name="demo")
    out = tmp_path / "x.jsonl"
    result = CliRunner().invoke(
        root, ["demo", "--orders", "3", "--cases", "1", "--jsonl", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(out.read_text("utf-8").splitlines()) >= 4
