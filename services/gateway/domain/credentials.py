"""API keys and request signatures for external systems (接入凭证).

An API key reads ``jdk_<key_id>_<secret>``: the key id finds the record, the secret is checked
against its pwdlib hash (only the hash is stored). A signing client instead sends
``X-Key-Id`` and ``X-Signature: sha256=<hex HMAC of the body>``; its signing secret is derived
from the server's master key and the key id, so it is not stored at rest either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "jdk"


def new_api_key() -> tuple[str, str]:
    """(key_id, full key); the full key is shown once to whoever creates it."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"


def key_id_of(api_key: str) -> str | None:
    parts = api_key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def signing_secret(master_key: str, key_id: str) -> str:
    return hmac.new(master_key.encode(), f"sign:{key_id}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header.strip())
