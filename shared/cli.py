"""``jiandu``: the operators' command line."""

from __future__ import annotations

from pathlib import Path

import typer

from services.gateway.keys import app as keys_app
from shared.demo.cli import app as demo_app
from shared.runner import SERVICES

app = typer.Typer(help="Jiandu (监督): supervision of administrative law enforcement.")
app.add_typer(demo_app, name="demo")
app.add_typer(keys_app, name="keys")


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
    from shared.runner import run_platform

    run_platform(
        data_dir,
        replicas=replicas,
        kafka_port=kafka_port,
        mongo_port=mongo_port,
        port_offset=port_offset,
        demo=demo,
    )


@app.command()
def topics(
    bootstrap: str = typer.Option("127.0.0.1:9092", envvar="JIANDU_KAFKA_BOOTSTRAP"),
    prefix: str = typer.Option("", envvar="JIANDU_TOPIC_PREFIX"),
) -> None:
    """Create every topic with its partitions (idempotent); SASL from JIANDU_KAFKA_* settings."""
    import asyncio

    from shared.embedded import create_topics
    from shared.settings import PlatformSettings

    options = PlatformSettings().kafka_client_options()
    for name in asyncio.run(create_topics(bootstrap, prefix, **options)):
        typer.echo(name)


@app.command("kafka-acls")
def kafka_acls(prefix: str = typer.Option("", envvar="JIANDU_TOPIC_PREFIX")) -> None:
    """Print the script that creates one Kafka user per service with only its topics."""
    from shared.topics import kafka_acl_script

    typer.echo(kafka_acl_script(prefix), nl=False)


@app.command()
def asyncapi(
    out: Path = typer.Option(Path("docs/asyncapi"), help="Folder for the AsyncAPI documents."),
) -> None:
    """Write each service's AsyncAPI document: FastStream's channels, a payload schema per
    event type (shared/asyncapi.py)."""
    from shared.asyncapi import write

    for target in write(out):
        typer.echo(f"{target}")


@app.command()
def status(
    peers: str = typer.Option(
        ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in SERVICES.items()),
        envvar="JIANDU_PEERS",
        help="name=url,… of the services to ask.",
    ),
) -> None:
    """Readiness of every service (Kafka and MongoDB as each of them sees them)."""
    import httpx
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Jiandu status")
    for column in ("service", "ready", "kafka", "mongodb", "url"):
        table.add_column(column)
    failed = False
    with httpx.Client(timeout=5) as http:
        for item in peers.split(","):
            name, _, url = item.partition("=")
            try:
                body = http.get(f"{url}/readyz").json()
                ready = bool(body.get("ready"))
                kafka = "ok" if body.get("kafka", {}).get("ok") else "down"
                mongo = "ok" if body.get("mongodb", {}).get("ok") else "down"
            except httpx.HTTPError as exc:
                ready, kafka, mongo = False, "?", f"unreachable: {type(exc).__name__}"
            failed |= not ready
            table.add_row(name, "yes" if ready else "NO", kafka, mongo, url)
    Console().print(table)
    raise typer.Exit(1 if failed else 0)


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
        None, min=0, help="Documents per collection for a last burst (default 100,000; 0: off)."
    ),
    work_dir: Path | None = typer.Option(None, help="Data folder (default: a temporary one)."),
) -> None:
    """Run the whole platform on fresh embedded servers and measure it (``make bench``)."""
    import tempfile

    from rich.console import Console

    from shared.benchmark import BenchPlan, run_bench, summary

    counts = [int(r) for r in replicas.split(",") if r.strip()]
    plan = BenchPlan.of(counts, quick, events, backlog, prefill)
    with tempfile.TemporaryDirectory(prefix="jiandu-bench-") as tmp:
        report = run_bench(plan, out, work_dir or Path(tmp))
    Console().print(summary(report))
    typer.echo(f"report: {out}  chart: {out.with_suffix('.png')}")


if __name__ == "__main__":
    app()
