"""``python -m shared.cli``: the operators' commands a production image carries (topics,
Kafka ACLs, status, ingest keys). The developer ``jiandu`` command (``devtools.cli``) adds
``run``, ``bench``, ``demo`` and ``asyncapi`` to these."""

from __future__ import annotations

import typer

from services.gateway.keys import app as keys_app
from shared.registry import SERVICES

app = typer.Typer(help="Jiandu (监督): supervision of administrative law enforcement.")
app.add_typer(keys_app, name="keys")


@app.command()
def topics(
    bootstrap: str = typer.Option("127.0.0.1:9092", envvar="JIANDU_KAFKA_BOOTSTRAP"),
    prefix: str = typer.Option("", envvar="JIANDU_TOPIC_PREFIX"),
) -> None:
    """Create every topic with its partitions (idempotent); SASL from JIANDU_KAFKA_* settings."""
    import asyncio

    from shared.kafka_admin import create_topics
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
def status(
    peers: str = typer.Option(
        ",".join(f"{n}=http://127.0.0.1:{s.port}" for n, s in SERVICES.items()),
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


if __name__ == "__main__":
    app()
