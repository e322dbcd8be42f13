"""``jiandu``: the developer's command line: the operators' commands (``shared.cli``) and
``run``, ``bench``, ``demo``, ``asyncapi`` on the embedded servers."""

from __future__ import annotations

from pathlib import Path

import typer

from devtools.demo.cli import app as demo_app
from shared import cli as ops
from shared.registry import SERVICE_NAMES

app = typer.Typer(help="Jiandu (监督): supervision of administrative law enforcement.")
app.registered_commands.extend(ops.app.registered_commands)
app.registered_groups.extend(ops.app.registered_groups)
app.add_typer(demo_app, name="demo")


@app.command()
def run(
    data_dir: Path = typer.Option(Path(".data"), help="Folder for Kafka and MongoDB data."),
    replicas: int = typer.Option(1, min=1, max=4, help="Replicas of every service."),
    kafka_port: int = typer.Option(9092, envvar="JIANDU_EMBEDDED_KAFKA_PORT"),
    mongo_port: int = typer.Option(27017, envvar="JIANDU_EMBEDDED_MONGO_PORT"),
    port_offset: int = typer.Option(
        0, envvar="JIANDU_PORT_OFFSET", help="Added to every service's HTTP port."
    ),
    demo: bool = typer.Option(
        True, envvar="JIANDU_DEMO", help="Feed realistic demo events while running."
    ),
) -> None:
    """Start noida-db, SecantusDB and every service; Ctrl-C stops everything."""
    from devtools.runner import run_platform

    run_platform(
        data_dir,
        replicas=replicas,
        kafka_port=kafka_port,
        mongo_port=mongo_port,
        port_offset=port_offset,
        demo=demo,
    )


@app.command()
def asyncapi(
    out: Path = typer.Option(Path("docs/asyncapi"), help="Folder for the AsyncAPI documents."),
) -> None:
    """Write each service's AsyncAPI document: FastStream's channels, a payload schema per
    event type (devtools/asyncapi.py)."""
    from devtools.asyncapi import write

    for target in write(out):
        typer.echo(f"{target}")


@app.command()
def bench(
    out: Path = typer.Option(Path("bench/report.json"), help="JSON report; the PNG goes beside."),
    replicas: str = typer.Option("1,2", help="Replica counts to compare, comma-separated."),
    quick: bool = typer.Option(False, help="Small counts (a smoke run, for tests)."),
    events: int | None = typer.Option(
        None, min=1, help="Demo events per end-to-end phase (default ~680, --quick ~70)."
    ),
    backlog: int | None = typer.Option(
        None, min=0, help="Events published before the services start (catch-up; default 10,000)."
    ),
    prefill: int | None = typer.Option(
        None,
        min=0,
        help="Documents per collection for a last burst (0: off; 100000: long form).",
    ),
    bursts: int | None = typer.Option(
        None,
        min=1,
        help="Bursts per run; the sustained rate is their median (default 3, --quick 1).",
    ),
    keep_records: bool = typer.Option(
        False,
        help="Keep consumed records on noida-db between phases (by default they are deleted:"
        " its CPU grows with what it stores).",
    ),
    work_dir: Path | None = typer.Option(None, help="Data folder (default: a temporary one)."),
) -> None:
    """Run the whole platform on fresh embedded servers and measure it (``make bench``)."""
    import tempfile

    from rich.console import Console

    from devtools.benchmark import BenchPlan, run_bench, summary

    counts = [int(r) for r in replicas.split(",") if r.strip()]
    plan = BenchPlan.of(counts, quick, events, backlog, prefill, bursts, keep_records)
    with tempfile.TemporaryDirectory(prefix="jiandu-bench-") as tmp:
        report = run_bench(plan, out, work_dir or Path(tmp))
    Console().print(summary(report))
    typer.echo(f"report: {out}  chart: {out.with_suffix('.png')}")


@app.command("bench-alone")
def bench_alone(
    service: str = typer.Option("hotline", help="Any service: " + ", ".join(SERVICE_NAMES) + "."),
    orders: int = typer.Option(1500, min=1, help="Demo work orders (and a third as many cases)."),
    rate: float | None = typer.Option(
        None, min=1, help="Publish at this many events/s while it runs (default: a backlog)."
    ),
    out: Path | None = typer.Option(None, help="Also write the report as JSON here."),
) -> None:
    """One service alone on its own SecantusDB, on what it consumes of a demo run: CPU per
    event (its process, its SecantusDB, noida-db), records, commands and documents per batch."""
    import asyncio
    import json
    import tempfile

    from devtools.bench_alone import as_dict, run_alone

    with tempfile.TemporaryDirectory(prefix="jiandu-alone-") as tmp:
        report = as_dict(asyncio.run(run_alone(service, orders, rate, Path(tmp))))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if out is not None:
        out.write_text(text + "\n")
    typer.echo(text)


if __name__ == "__main__":
    app()
