"""Login (OAuth2 password grant → a bearer JWT every service accepts) and ``/v1/me``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request

from services.gateway.auth import issue_token
from services.gateway.deps import GatewayDep, PrincipalDep
from services.gateway.domain.ingest import media_type
from services.gateway.routes.ingest import read_limited
from services.gateway.schemas import Me, TokenOut

router = APIRouter(tags=["auth"])
MAX_LOGIN_BYTES = 8192


async def login_form(request: Request) -> dict[str, Any]:
    """The grant's fields, from a form or a JSON body (400 when it is neither)."""
    body, too_big = await read_limited(request, MAX_LOGIN_BYTES)
    if too_big:
        raise HTTPException(413, detail="login body too large")
    if media_type(request.headers.get("content-type")) != "application/json":
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    try:
        form = json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, detail="body is not JSON") from exc
    if not isinstance(form, dict):
        raise HTTPException(400, detail="body must be an object")
    return form


@router.post("/v1/auth/token", response_model=TokenOut)
async def token(request: Request, gw: GatewayDep) -> TokenOut:
    """OAuth2 password grant (form or JSON body) → a bearer JWT."""
    form = await login_form(request)
    if form.get("grant_type", "password") != "password":
        raise HTTPException(400, detail="unsupported_grant_type: only 'password'")
    username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise HTTPException(400, detail="username and password are required")
    principal = await gw.auth.login(username, password)
    if principal is None:
        await gw.record(username, "-", "login_failed", "auth")
        raise HTTPException(
            401,
            detail="invalid_grant: wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    await gw.record(
        principal.sub, principal.role.value, "login", "auth", district=principal.district
    )
    return TokenOut(
        access_token=issue_token(gw.settings, principal, gw.clock.now()),
        expires_in=gw.settings.jwt_ttl_s,
        role=principal.role.value,
        district=principal.district,
        unit=principal.unit,
        scope=" ".join(principal.scopes),
    )


@router.get("/v1/me", response_model=Me)
async def me(principal: PrincipalDep, gw: GatewayDep) -> Me:
    return Me(
        sub=principal.sub,
        role=principal.role.value,
        district=principal.district,
        unit=principal.unit,
        scopes=principal.scopes,
        personal_data=principal.role.value in gw.settings.pii_role_set(),
        jaeger_url=gw.settings.jaeger_url,
    )
