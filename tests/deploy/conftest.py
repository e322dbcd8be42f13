"""Fixtures of the deployment tests: repository paths and the services' own facts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.facts import MARKER

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def service_facts() -> dict[str, dict[str, Any]]:
    """Consumed topics, group id, port, database and metric names of each service, as built
    by its composition root with default settings (in a child process, see facts.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIANDU_")}
    env["JIANDU_LOG_JSON"] = "false"
    out = subprocess.run(
        [sys.executable, "-m", "tests.deploy.facts"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in reversed(out.stdout.splitlines()) if x.startswith(MARKER))
    facts: dict[str, dict[str, Any]] = json.loads(line[len(MARKER) :])
    return facts
