"""``jiandu keys``: ingest API keys for external systems (接入密钥), against a running platform.

Where the platform is: ``JIANDU_MONGO_URI`` / ``JIANDU_MONGO_DB`` when set (production, like the
service itself), else the ``platform.json`` that ``jiandu run`` writes into its data folder
(``--data-dir``, default ``.data``, ``JIANDU_DATA_DIR``), else the gateway's defaults. A new
key and its signing secret are printed once, with a ``curl`` of a first event; only an
argon2 hash of the key is stored. Every command is written to the audit chain.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer

from services.gateway import storage
from services.gateway.auth import hash_secret
from services.gateway.domain.credentials import new_api_key, signing_secret
from services.gateway.settings import GatewaySettings
from shared.city import load_city
from shared.mongo import Document, make_client

T = TypeVar("T")
app = typer.Typer(help="Ingest API keys (接入密钥): create, list, revoke, rotate.")

PLATFORM_FILE = "platform.json"
"""What ``jiandu run`` writes into its data folder: URIs and URLs of the running platform."""

DataDir = typer.Option(
    Path(".data"), envvar="JIANDU_DATA_DIR", help="Data folder of the `jiandu run` platform."
)


def platform_info(data_dir: Path) -> dict[str, Any]:
    try:
        info = json.loads((data_dir / PLATFORM_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def settings_for(data_dir: Path) -> GatewaySettings:
    """The gateway's settings: the environment first, then the running platform's file."""
    overrides: dict[str, Any] = {}
    info = platform_info(data_dir)
    if "JIANDU_MONGO_URI" not in os.environ and info.get("mongo_uri"):
        overrides["mongo_uri"] = info["mongo_uri"]
    return GatewaySettings(**overrides)


def gateway_url(data_dir: Path) -> str:
    url = platform_info(data_dir).get("gateway_url")
    return str(url) if url else "http://127.0.0.1:8000"


def _run(data_dir: Path, work: Callable[[storage.Db, GatewaySettings], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = settings_for(data_dir)
        client = make_client(settings.mongo_uri, "jiandu-keys")
        try:
            return await work(client[settings.database], settings)
        finally:
            await client.close()

    return asyncio.run(main())


async def _audit(db: storage.Db, action: str, ids: list[str]) -> None:
    await storage.AuditLog(db).append(
        at=datetime.now(UTC),
        actor=f"cli:{getpass.getuser()}",
        role="admin",
        action=action,
        resource="api_keys",
        resource_ids=ids,
    )


def parse_districts(value: str | None) -> list[str] | None:
    """``310101,310106`` → the codes, each a district of the city; empty → every district."""
    if not value or not value.strip():
        return None
    city = load_city()
    codes = sorted({c.strip() for c in value.split(",") if c.strip()})
    unknown = [c for c in codes if city.district(c) is None]
    if unknown:
        known = ", ".join(f"{d.code} {d.name}" for d in city.districts)
        raise typer.BadParameter(f"unknown district(s) {', '.join(unknown)}; known: {known}")
    return codes


async def _create(
    db: storage.Db, settings: GatewaySettings, name: str, districts: list[str] | None
) -> tuple[str, str, str]:
    key_id, key = new_api_key()
    await storage.insert_api_key(
        db,
        {
            "_id": key_id,
            "name": name,
            "districts": districts,
            "hash": await asyncio.to_thread(hash_secret, key),
            "created_at": datetime.now(UTC),
        },
    )
    return key_id, key, signing_secret(settings.signing_master_key, key_id)


def _show(key_id: str, key: str, secret: str, url: str, districts: list[str] | None) -> None:
    typer.echo(f"key id:         {key_id}")
    typer.echo(f"X-Api-Key:      {key}")
    typer.echo(f"signing secret: {secret}")
    typer.echo(f"districts:      {', '.join(districts) if districts else 'all'}")
    typer.echo("(shown once: only a hash of the key is stored)")
    typer.echo("")
    typer.echo("first event:")
    typer.echo(
        f"  curl -sS -X POST {url}/v1/events -H 'Content-Type: application/cloudevents+json'"
        f" -H 'X-Api-Key: {key}' -d @event.json"
    )


@app.command()
def create(
    name: str = typer.Option(..., help="Who sends with it, e.g. 12345 (the hotline platform)."),
    districts: str | None = typer.Option(
        None, help="Comma-separated district codes it may send for (default: all)."
    ),
    data_dir: Path = DataDir,
) -> None:
    """Create a key; prints the key and its HMAC signing secret once."""
    codes = parse_districts(districts)

    async def work(db: storage.Db, settings: GatewaySettings) -> tuple[str, str, str]:
        created = await _create(db, settings, name, codes)
        await _audit(db, "create_api_key", [created[0]])
        return created

    key_id, key, secret = _run(data_dir, work)
    _show(key_id, key, secret, gateway_url(data_dir), codes)


@app.command("list")
def list_keys(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
    data_dir: Path = DataDir,
) -> None:
    """The keys (never their secrets)."""

    async def work(db: storage.Db, _: GatewaySettings) -> list[Document]:
        return await storage.list_api_keys(db, include_revoked=all_keys)

    for doc in _run(data_dir, work):
        districts = ",".join(doc.get("districts") or []) or "all"
        state = f"revoked {doc['revoked_at']:%Y-%m-%d %H:%M}" if doc.get("revoked") else "active"
        created = doc.get("created_at")
        when = f"{created:%Y-%m-%d %H:%M}" if isinstance(created, datetime) else "?"
        typer.echo(f"{doc['_id']}  {doc.get('name', '')}  districts={districts}  {when}  {state}")


@app.command()
def revoke(key_id: str, data_dir: Path = DataDir) -> None:
    """Revoke a key: the gateway refuses it from its next request."""

    async def work(db: storage.Db, _: GatewaySettings) -> Document | None:
        doc = await storage.revoke_api_key(db, key_id, datetime.now(UTC))
        if doc is not None:
            await _audit(db, "revoke_api_key", [key_id])
        return doc

    if _run(data_dir, work) is None:
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def rotate(key_id: str, data_dir: Path = DataDir) -> None:
    """A new key with the same name and districts; the old one is revoked."""

    async def work(db: storage.Db, settings: GatewaySettings) -> tuple[Any, ...] | None:
        old = await storage.find_api_key(db, key_id)
        if old is None:
            return None
        districts = old.get("districts")
        created = await _create(db, settings, str(old.get("name", key_id)), districts)
        await storage.revoke_api_key(db, key_id, datetime.now(UTC))
        await _audit(db, "rotate_api_key", [key_id, created[0]])
        return (*created, districts)

    result = _run(data_dir, work)
    if result is None:
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    new_id, key, secret, districts = result
    typer.echo(f"{key_id} revoked; its replacement:")
    _show(new_id, key, secret, gateway_url(data_dir), districts)
