"""``jiandu``: the operators' command line."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Jiandu (监督): supervision of administrative law enforcement.")


@app.command()
def run(
    data_dir: Path = typer.Option(Path(".data"), help="Folder for Kafka and MongoDB data."),
    replicas: int = typer.Option(1, min=1, max=4, help="Replicas of every service."),
    kafka_port: int = typer.Option(9092, envvar="JIANDU_EMBEDDED_KAFKA_PORT"),
    mongo_port: int = typer.Option(27017, envvar="JIANDU_EMBEDDED_MONGO_PORT"),
    port_offset: int = typer.Option(
        0, envvar="JIANDU_PORT_OFFSET", help="Added to every service's HTTP port."
    ),
    demo: bool = typer.Option(True, help="Feed realistic demo events while running."),
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
    """Create every topic with its partitions (idempotent)."""
    import asyncio

    from shared.embedded import create_topics

    for name in asyncio.run(create_topics(bootstrap, prefix)):
        typer.echo(name)


if __name__ == "__main__":
    app()
