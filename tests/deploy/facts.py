"""Print, as JSON, what the code says about each service (run in a child process).

Building a service sets process-global state (logging, the first TracerProvider becomes the
global one), so the deploy tests ask a child process instead of building services in the
test process: ``python -m tests.deploy.facts``.
"""

from __future__ import annotations

import importlib
import json
import sys

from prometheus_client import generate_latest

from shared.registry import SERVICES

MARKER = "JIANDU-FACTS "


def metric_names(text: str) -> list[str]:
    """Every series name a scrape can show, from the ``# TYPE`` lines (even with no samples)."""
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(maxsplit=3)
        if kind == "histogram":
            names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        elif kind == "summary":
            names.update({name, f"{name}_sum", f"{name}_count"})
        else:
            names.add(name)
    return sorted(names)


def main() -> None:
    facts = {}
    for name in SERVICES:
        service = importlib.import_module(SERVICES[name].main).build()
        facts[name] = {
            "consumes": sorted({c.topic for c in service.consumers.values()}),
            "group_id": service.settings.group_id,
            "http_port": service.settings.http_port,
            "database": service.settings.database,
            "settings_fields": sorted(type(service.settings).model_fields),
            "metrics": metric_names(generate_latest(service.registry).decode()),
        }
    # A marker, in case a composition root logs to stdout while it is built.
    sys.stdout.write(MARKER + json.dumps(facts) + "\n")


if __name__ == "__main__":
    main()
