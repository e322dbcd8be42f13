"""Authentication: passwords (pwdlib), bearer JWTs (PyJWT, HS256) and API keys for ingest.

:class:`Auth` checks a login and an ingest request's credentials; the dependencies that
turn a bearer token into the caller and its data scope are in ``services.gateway.deps``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from pwdlib import PasswordHash

from services.gateway import storage
from services.gateway.domain.access import Principal, Role
from services.gateway.domain.credentials import key_id_of, signature_ok, signing_secret
from services.gateway.settings import GatewaySettings
from shared import identity
from shared.identity import Caller, decode_token
from shared.mongo import Document

__all__ = ["Auth", "Caller", "create_user", "decode_token", "issue_token", "principal_of"]

PASSWORDS = PasswordHash.recommended()
"""Argon2 (pwdlib's recommendation) for user passwords and API-key secrets."""


def hash_secret(secret: str) -> str:
    return PASSWORDS.hash(secret)


def verify_secret(secret: str, hashed: str) -> bool:
    try:
        return PASSWORDS.verify(secret, hashed)
    except Exception:  # malformed hash: not a match
        return False


def issue_token(settings: GatewaySettings, principal: Principal, now: datetime) -> str:
    """A bearer token every service accepts (shared.identity verifies it)."""
    return identity.issue_token(settings, principal, now, ttl_s=settings.jwt_ttl_s)


def principal_of(user: Document) -> Principal:
    return Principal(
        sub=user["_id"], role=user["role"], district=user.get("district"), unit=user.get("unit")
    )


class Auth:
    def __init__(self, settings: GatewaySettings, db: Callable[[], storage.Db]) -> None:
        self.settings = settings
        self._db = db
        self._verified_keys: dict[str, str] = {}  # sha256(api key) → its hash, after argon2

    # -- login ---------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> Principal | None:
        user = await storage.find_user(self._db(), username)
        if user is None or user.get("disabled"):
            await asyncio.to_thread(hash_secret, password)  # same cost: no user enumeration
            return None
        if not await asyncio.to_thread(verify_secret, password, user["password_hash"]):
            return None
        return principal_of(user)

    # -- ingest credentials ---------------------------------------------------------------

    async def ingest_key(
        self, request: Request, body: bytes, *, body_complete: bool = True
    ) -> IngestCredential:
        """Who sent this ingest request, or why they are not recognised.

        With ``body_complete`` False (an oversized body, cut at the limit) an HMAC signature
        cannot be checked: the key id it names is reported unverified when that key exists.
        """
        api_key = request.headers.get("x-api-key")
        signature = request.headers.get("x-signature")
        if api_key:
            key_id = key_id_of(api_key)
            if key_id is None:
                return IngestCredential(None, "unauthenticated")
            record = await storage.find_api_key(self._db(), key_id)
            if record is None:
                return IngestCredential(key_id, "unauthenticated")
            digest = hashlib.sha256(api_key.encode()).hexdigest()
            if self._verified_keys.get(digest) != record.get("hash"):
                if not await asyncio.to_thread(verify_secret, api_key, record["hash"]):
                    return IngestCredential(key_id, "unauthenticated")
                self._verified_keys[digest] = record["hash"]
            return IngestCredential(key_id, None, districts_of(record))
        if signature:
            key_id = request.headers.get("x-key-id", "").strip()
            record = await storage.find_api_key(self._db(), key_id) if key_id else None
            if record is None:
                return IngestCredential(key_id or None, "bad_signature")
            if not body_complete:
                return IngestCredential(key_id, None, districts_of(record), verified=False)
            secret = signing_secret(self.settings.signing_master_key, key_id)
            if not signature_ok(secret, body, signature):
                return IngestCredential(key_id, "bad_signature")
            return IngestCredential(key_id, None, districts_of(record))
        return IngestCredential(None, "unauthenticated")


@dataclass(frozen=True)
class IngestCredential:
    """The ingest key a request names, and ``failure`` (a refusal code) unless it is valid."""

    key_id: str | None
    failure: str | None
    districts: frozenset[str] | None = None
    """The districts the key may send events for; None: every district."""
    verified: bool = True


def districts_of(record: Document) -> frozenset[str] | None:
    districts = record.get("districts")
    return frozenset(districts) if districts else None


async def create_user(
    db: storage.Db,
    username: str,
    password: str,
    role: Role,
    district: str | None,
    unit: str | None,
    now: datetime | None = None,
) -> Principal:
    """Validate the claims, hash the password, store the user (the admin CLI and bootstrap)."""
    principal = Principal(sub=username, role=role, district=district, unit=unit)
    if principal.role is Role.UNIT_OFFICER and not principal.district and unit:
        principal = principal.model_copy(update={"district": unit.split("-", 1)[0]})
    await storage.insert_user(
        db,
        {
            "_id": username,
            "password_hash": await asyncio.to_thread(hash_secret, password),
            "role": principal.role.value,
            "district": principal.district,
            "unit": principal.unit,
            "created_at": now or datetime.now(UTC),
        },
    )
    return principal
