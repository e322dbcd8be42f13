"""``jiandu demo``: load deterministic demo data onto the ingest topics.

Mount with ``app.add_typer(demo_app, name="demo")``; ``jiandu demo --seed 7 --orders 2000``
publishes as fast as Kafka takes it, ``--speed 60`` replays the same story at 60× real time,
``--jsonl FILE`` writes the events instead of publishing them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from devtools.demo.feed import count_by_type, publish
from devtools.demo.generator import DemoGenerator, DemoMix

app = typer.Typer(help="Deterministic realistic demo data (12345 work orders, case files).")


@app.callback(invoke_without_command=True)
def demo(
    seed: int = typer.Option(2025, help="Same seed, same events (ids included)."),
    orders: int = typer.Option(500, min=0, help="Distinct 12345 work orders."),
    cases: int = typer.Option(120, min=0, help="Closed case files (with their penalties)."),
    speed: float | None = typer.Option(
        None, min=0.001, help="Replay N× real time; default: as fast as possible."
    ),
    bootstrap: str = typer.Option("127.0.0.1:9092", envvar="JIANDU_KAFKA_BOOTSTRAP"),
    prefix: str = typer.Option("", envvar="JIANDU_TOPIC_PREFIX", help="Topic name prefix."),
    start: dt.datetime | None = typer.Option(
        None, help="First received time (ISO); default: span-days before now, so it is history."
    ),
    span_days: float = typer.Option(30.0, min=0.01, help="Window of received/decided times."),
    jsonl: Path | None = typer.Option(
        None, help="Write the events (structured CloudEvents, one per line) instead."
    ),
) -> None:
    """Generate the demo events and publish them to the ingest topics."""
    mix = DemoMix(span_days=span_days)
    began = start or dt.datetime.now(dt.UTC) - dt.timedelta(days=span_days)
    events = DemoGenerator(seed, began, mix).events(orders, cases)
    console = Console(stderr=True)
    table = Table(title=f"demo seed {seed}: {len(events)} events")
    table.add_column("type")
    table.add_column("events", justify="right")
    for type_, n in sorted(count_by_type(events).items()):
        table.add_row(type_, str(n))
    console.print(table)
    if jsonl is not None:
        with jsonl.open("w", encoding="utf-8") as out:
            for _, event in events:
                out.write(json.dumps(event.model_dump(mode="json"), ensure_ascii=False) + "\n")
        console.print(f"wrote {jsonl}")
        return
    sent = asyncio.run(publish(events, bootstrap, prefix=prefix, speed=speed))
    console.print(f"published {sent} events to {bootstrap}")
