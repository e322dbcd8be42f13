"""Admin CLI of the gateway: ``python -m services.gateway.admin --help``.

Creates users (password hashed with pwdlib), API keys for external systems (only the hash
is stored; the key and its HMAC signing secret are printed once), mints tokens, and verifies
the audit chain. Reads ``JIANDU_*`` settings like the service; every command is audited.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from pymongo.errors import DuplicateKeyError
from rich.console import Console

from services.gateway import storage
from services.gateway.auth import create_user, hash_secret, issue_token, principal_of
from services.gateway.domain.access import Role
from services.gateway.domain.audit import ChainReport
from services.gateway.domain.credentials import new_api_key, signing_secret
from services.gateway.settings import GatewaySettings
from shared.mongo import make_client

T = TypeVar("T")
app = typer.Typer(help="Jiandu gateway administration (用户、接入密钥、令牌、审计校验)")
out = Console()


def _run(work: Callable[[storage.Db, GatewaySettings], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = GatewaySettings()
        client = make_client(settings.mongo_uri, "jiandu-gateway-admin")
        try:
            return await work(client[settings.database], settings)
        finally:
            await client.close()

    return asyncio.run(main())


async def _audit(db: storage.Db, action: str, resource: str, ids: list[str]) -> None:
    await storage.AuditLog(db).append(
        at=datetime.now(UTC),
        actor=f"admin-cli:{getpass.getuser()}",
        role="admin",
        action=action,
        resource=resource,
        resource_ids=ids,
    )


@app.command("create-user")
def create_user_cmd(
    username: str,
    role: Role = typer.Option(..., help="city_supervisor | district_supervisor | ..."),
    district: str | None = typer.Option(None, help="six-digit district code"),
    unit: str | None = typer.Option(None, help="unit id, e.g. 310106-cgzf"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create a console/API user."""

    async def work(db: storage.Db, _: GatewaySettings) -> None:
        try:
            principal = await create_user(db, username, password, role, district, unit)
        except DuplicateKeyError:
            out.print(f"[red]user {username} exists[/]")
            raise typer.Exit(1) from None
        await _audit(db, "create_user", "users", [username])
        out.print(f"created {principal.sub} ({principal.role.value})")

    try:
        _run(work)
    except ValueError as exc:
        out.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc


@app.command("create-api-key")
def create_api_key(
    name: str = typer.Argument(..., help="who uses it, e.g. 12345-platform"),
) -> None:
    """Create an API key for an external system (``jiandu keys create`` does more)."""

    async def work(db: storage.Db, settings: GatewaySettings) -> None:
        key_id, key = new_api_key()
        await storage.insert_api_key(
            db,
            {
                "_id": key_id,
                "name": name,
                "hash": hash_secret(key),
                "created_at": datetime.now(UTC),
            },
        )
        await _audit(db, "create_api_key", "api_keys", [key_id])
        out.print(f"key id:          {key_id}")
        out.print(f"X-Api-Key:       {key}")
        out.print(f"signing secret:  {signing_secret(settings.signing_master_key, key_id)}")
        out.print("(shown once; only a hash of the key is stored)")

    _run(work)


@app.command("issue-token")
def issue_token_cmd(username: str) -> None:
    """Mint a bearer token for an existing user (no password; privileged and audited)."""

    async def work(db: storage.Db, settings: GatewaySettings) -> None:
        user = await storage.find_user(db, username)
        if user is None:
            out.print(f"[red]no user {username}[/]")
            raise typer.Exit(1)
        token = issue_token(settings, principal_of(user), datetime.now(UTC))
        await _audit(db, "issue_token", "users", [username])
        print(token)

    _run(work)


@app.command("verify-audit")
def verify_audit() -> None:
    """Re-hash the audit chain; exit code 1 at the first altered or missing record."""

    async def work(db: storage.Db, _: GatewaySettings) -> ChainReport:
        return await storage.AuditLog(db).verify()

    report = _run(work)
    if report.ok:
        out.print(f"[green]audit chain intact[/]: {report.checked} records")
        return
    out.print(f"[red]audit chain broken at record {report.broken_at}[/]: {report.problem}")
    raise typer.Exit(1)


if __name__ == "__main__":
    app()
