"""Bearer tokens (JWT): the settings every service shares, issuing and verifying.

The gateway issues the tokens (``services/gateway/auth.py``); every service verifies them with
the same settings (``JIANDU_JWT_*``): signature (HS256 shared secret, or RS256/ES256 public
key), expiry, issuer and audience.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from fastapi import HTTPException
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.identity.access import Principal, Role

DEV_JWT_SECRET = "jiandu-dev-only-change-me-0123456789abcdef"
"""The embedded default's secret: only accepted while the HTTP API binds to loopback."""

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _read_secret_file(path: str | None) -> str | None:
    if not path:
        return None
    return Path(path).read_text(encoding="utf-8").strip()


class IdentitySettings(BaseSettings):
    """Token settings every service shares (``JIANDU_JWT_*``); secrets may come from files
    (``JIANDU_JWT_SECRET_FILE``, Docker/Kubernetes secrets) instead of the environment."""

    model_config = SettingsConfigDict(env_prefix="JIANDU_", extra="ignore")

    jwt_algorithm: str = Field(
        default="HS256", pattern=r"^(HS256|RS256|ES256)$", description="token signature"
    )
    jwt_secret: str = Field(
        default=DEV_JWT_SECRET,
        min_length=32,
        description="HS256 secret; the default is for the loopback-only embedded platform.",
    )
    jwt_secret_file: str | None = Field(default=None, description="file holding jwt_secret")
    jwt_public_key_file: str | None = Field(
        default=None, description="PEM public key that verifies RS256/ES256 tokens"
    )
    jwt_private_key_file: str | None = Field(
        default=None, description="PEM private key the gateway signs RS256/ES256 tokens with"
    )
    jwt_issuer: str = "jiandu-gateway"
    jwt_audience: str = Field(default="jiandu", description="the `aud` every service expects")
    jwt_leeway_s: int = Field(default=30, ge=0, le=300, description="clock skew tolerated")
    pii_roles: str = Field(
        default="district_supervisor,unit_officer",
        description="Roles that see personal data unmasked (comma-separated); each such read"
        " is written to the audit chain.",
    )

    @model_validator(mode="after")
    def _secret_from_file(self) -> IdentitySettings:
        secret = _read_secret_file(self.jwt_secret_file)
        if secret is not None:
            self.jwt_secret = secret
        return self

    def pii_role_set(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.pii_roles.split(",") if r.strip())

    def verifying_key(self) -> str:
        if self.jwt_algorithm == "HS256":
            return self.jwt_secret
        key = _read_secret_file(self.jwt_public_key_file)
        if not key:
            raise ValueError(f"{self.jwt_algorithm} needs JIANDU_JWT_PUBLIC_KEY_FILE")
        return key

    def signing_key(self) -> str:
        if self.jwt_algorithm == "HS256":
            return self.jwt_secret
        key = _read_secret_file(self.jwt_private_key_file)
        if not key:
            raise ValueError(f"{self.jwt_algorithm} needs JIANDU_JWT_PRIVATE_KEY_FILE")
        return key

    def uses_dev_secret(self) -> bool:
        return self.jwt_algorithm == "HS256" and self.jwt_secret == DEV_JWT_SECRET


def issue_token(
    settings: IdentitySettings,
    principal: Principal,
    now: datetime,
    ttl_s: int,
    audience: str | None = None,
) -> str:
    claims: dict[str, Any] = {
        "sub": principal.sub,
        "role": principal.role.value,
        "district": principal.district,
        "unit": principal.unit,
        "scope": " ".join(principal.scopes),
        "iss": settings.jwt_issuer,
        "aud": audience or settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=settings.jwt_algorithm)


def service_token(settings: IdentitySettings, service: str, now: datetime | None = None) -> str:
    """A short-lived token for service-to-service calls: role ``service``, subject the name."""
    principal = Principal(sub=f"service:{service}", role=Role.SERVICE)
    return issue_token(settings, principal, now or datetime.now(UTC), ttl_s=300)


def decode_token(settings: IdentitySettings, token: str) -> Principal:
    """The principal of a valid token; 401 for a bad signature, expiry, issuer or audience."""
    try:
        claims = jwt.decode(
            token,
            settings.verifying_key(),
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_s,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
        return Principal(
            sub=claims["sub"],
            role=Role(str(claims.get("role"))),
            district=claims.get("district"),
            unit=claims.get("unit"),
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise HTTPException(
            401, detail=f"invalid bearer token: {exc}", headers={"WWW-Authenticate": "Bearer"}
        ) from exc
