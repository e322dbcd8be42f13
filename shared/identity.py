"""One identity for every API (统一身份): roles, token verification, data scope, masking.

The gateway issues bearer JWTs (``services/gateway/auth.py``); every service verifies them
here with the same settings (``JIANDU_JWT_*``): signature (HS256 shared secret, or RS256/ES256
public key), expiry, issuer and audience. :func:`guarded_router` gives a service an
``APIRouter`` on which

* every route needs a valid token (anonymous → 401, bad token → 401);
* every JSON response is masked by role (:func:`mask_tree`: name, phone, ID number, address)
  and every unmasked personal-data read is reported to an audit hook (the services emit a
  ``jiandu.audit.read`` event that the gateway chains into its audit log).

Routes read the caller with the ``CallerDep`` annotation and check objects with
:func:`require_in_scope` (another district's or unit's object → 404) and
:func:`acting_unit` (a body naming another unit → 403).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.city import CITY_BUREAU

DEV_JWT_SECRET = "jiandu-dev-only-change-me-0123456789abcdef"
"""The embedded default's secret: only accepted while the HTTP API binds to loopback."""

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


# ------------------------------------------------------------------ roles and permissions


class Role(StrEnum):
    CITY_SUPERVISOR = "city_supervisor"  # 市司法局
    DISTRICT_SUPERVISOR = "district_supervisor"  # 区司法局
    UNIT_OFFICER = "unit_officer"  # 执法部门/街镇
    REVIEWER = "reviewer"  # 评查人员
    OPERATOR = "operator"  # 运维
    SERVICE = "service"  # another Jiandu service (service-to-service calls)


class Permission(StrEnum):
    READ_OVERVIEW = "overview:read"
    READ_COMPLAINTS = "complaints:read"
    READ_CASES = "cases:read"
    READ_FILINGS = "filings:read"
    READ_INSPECTIONS = "inspections:read"  # 涉企检查, officer registry, correction rates
    READ_LEADS = "leads:read"
    DISPOSE_LEADS = "leads:dispose"
    READ_NOTICES = "notices:read"
    READ_FEED = "feed:read"
    READ_QUARANTINE = "quarantine:read"
    READ_OPS = "ops:read"  # health, consumer lag, dead letters
    REPLAY = "deadletters:replay"
    AUDIT = "audit:verify"
    SUPERVISE = "supervise"  # supervisory commands: reroute, decide, review, campaigns
    UNIT_ACTION = "unit:act"  # 签收、退单、延期、办结, replies, rectification answers
    SCORE = "reviews:score"  # 评查 scoring
    RESEND = "notices:resend"


_SUPERVISION = {
    Permission.READ_OVERVIEW,
    Permission.READ_COMPLAINTS,
    Permission.READ_CASES,
    Permission.READ_FILINGS,
    Permission.READ_INSPECTIONS,
    Permission.READ_LEADS,
    Permission.READ_NOTICES,
    Permission.READ_FEED,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CITY_SUPERVISOR: frozenset(
        _SUPERVISION
        | {Permission.DISPOSE_LEADS, Permission.READ_QUARANTINE, Permission.READ_OPS}
        | {Permission.AUDIT, Permission.SUPERVISE, Permission.UNIT_ACTION, Permission.RESEND}
    ),
    Role.DISTRICT_SUPERVISOR: frozenset(
        _SUPERVISION
        | {Permission.DISPOSE_LEADS, Permission.SUPERVISE, Permission.UNIT_ACTION}
        | {Permission.RESEND}
    ),
    Role.UNIT_OFFICER: frozenset(_SUPERVISION | {Permission.UNIT_ACTION}),
    Role.REVIEWER: frozenset({Permission.READ_OVERVIEW, Permission.READ_CASES, Permission.SCORE}),
    Role.OPERATOR: frozenset(
        {
            Permission.READ_OVERVIEW,
            Permission.READ_FEED,
            Permission.READ_QUARANTINE,
            Permission.READ_OPS,
            Permission.REPLAY,
            Permission.AUDIT,
            Permission.RESEND,
        }
    ),
    Role.SERVICE: frozenset({Permission.READ_OVERVIEW, Permission.READ_OPS}),
}


class Principal(BaseModel):
    """The authenticated caller, as carried by the bearer token."""

    sub: str
    role: Role
    district: str | None = None
    unit: str | None = None

    @model_validator(mode="after")
    def _claims_fit_role(self) -> Principal:
        if self.role is Role.DISTRICT_SUPERVISOR and not self.district:
            raise ValueError("a district supervisor needs a district claim")
        if self.role is Role.UNIT_OFFICER and not self.unit:
            raise ValueError("a unit officer needs a unit claim")
        return self

    @property
    def scopes(self) -> list[str]:
        return sorted(p.value for p in ROLE_PERMISSIONS[self.role])

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def scope_filter(principal: Principal) -> dict[str, Any]:
    """The data scope (数据范围) of ``principal`` as a MongoDB filter on ``district``/``unit``.

    City supervisors and operators see the whole city; a district supervisor (and a reviewer
    bound to a district) only that district; a unit officer only items of that unit.
    """
    if principal.role is Role.UNIT_OFFICER:
        return {"unit": principal.unit}
    if principal.role is Role.DISTRICT_SUPERVISOR:
        return {"district": principal.district}
    if principal.role is Role.REVIEWER and principal.district:
        return {"district": principal.district}
    return {}


def within(scope: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Combine the scope with request filters; a request can narrow, never widen, the scope."""
    if not extra:
        return dict(scope)
    if not scope:
        return dict(extra)
    return {"$and": [scope, extra]}


def rename_scope(scope: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """The scope on a collection whose unit (or district) field has another name."""
    return {fields.get(k, k): v for k, v in scope.items()}


def in_scope(scope: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Whether ``doc`` lies in ``scope`` (a flat equality filter from :func:`scope_filter`)."""

    def fits(value: Any, wanted: Any) -> bool:
        return wanted in value if isinstance(value, list) else value == wanted

    return all(fits(doc.get(k), v) for k, v in scope.items())


@dataclass
class Caller:
    """The caller and the data-scope filter derived from it (the only scope in the APIs)."""

    principal: Principal
    scope: dict[str, Any]
    pii: bool = False  # whether this caller sees personal data unmasked
    reads: list[str] = field(default_factory=list)  # unmasked reads to audit (ids)

    @property
    def sub(self) -> str:
        return self.principal.sub

    @property
    def role(self) -> Role:
        return self.principal.role

    def require(self, permission: Permission) -> None:
        if not self.principal.can(permission):
            raise HTTPException(
                403, detail=f"role {self.principal.role.value} lacks {permission.value}"
            )


def require_in_scope(
    caller: Caller, doc: dict[str, Any] | None, what: str, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    """``doc`` when the caller may see it; 404 when it does not exist or lies out of scope
    (out of scope answers like a missing object, so ids of other districts do not leak)."""
    scope = rename_scope(caller.scope, fields or {})
    if doc is None or not in_scope(scope, doc):
        raise HTTPException(404, detail=f"{what} not found")
    return doc


def acting_unit(caller: Caller, named: str | None) -> str:
    """The unit a unit action acts as: the token's, never the body's.

    A unit officer acts as its unit; a district supervisor as its district's justice bureau
    (司法局, or the unit in its token); the city supervisor as the city bureau. A body that
    names another unit is refused (403).
    """
    caller.require(Permission.UNIT_ACTION)
    p = caller.principal
    if p.unit:
        own = p.unit
    elif p.role is Role.DISTRICT_SUPERVISOR:
        own = f"{p.district}-sfj"
    else:
        own = CITY_BUREAU
    if named is not None and named != own:
        raise HTTPException(403, detail=f"the token acts as {own}, not {named}")
    return own


def acting_person(caller: Caller, named: str | None) -> str:
    """Who acts: the token's subject. A body may repeat it; naming someone else is refused."""
    if named is not None and named != caller.principal.sub:
        raise HTTPException(403, detail=f"the token is {caller.principal.sub}, not {named}")
    return caller.principal.sub


def district_in_scope(caller: Caller, district: str | None) -> None:
    """403 when the caller's scope is one district and ``district`` is another."""
    mine = caller.scope.get("district")
    if mine is not None and district != mine:
        raise HTTPException(403, detail=f"district {district} is outside the caller's scope")
    unit = caller.scope.get("unit")
    if unit is not None and (district is None or not str(unit).startswith(f"{district}-")):
        raise HTTPException(403, detail=f"district {district} is outside the caller's scope")


# ------------------------------------------------------------------ settings and tokens


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


oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def caller_of(settings: IdentitySettings, principal: Principal) -> Caller:
    return Caller(
        principal, scope_filter(principal), pii=principal.role.value in settings.pii_role_set()
    )


async def authenticate(request: Request, token: str | None = Depends(oauth2)) -> Caller:
    """Dependency: the verified caller of this request (401 without a valid token).

    The settings are the serving service's (``app.state.service.settings``); the caller is
    kept on ``request.state`` so the masking route class sees it.
    """
    cached = getattr(request.state, "caller", None)
    if isinstance(cached, Caller):
        return cached
    if not token:
        raise HTTPException(
            401, detail="bearer token required", headers={"WWW-Authenticate": "Bearer"}
        )
    settings = request.app.state.service.settings
    assert isinstance(settings, IdentitySettings)
    caller = caller_of(settings, decode_token(settings, token))
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
"""Route parameter annotation: ``caller: CallerDep``."""


# ------------------------------------------------------------------ personal data


def mask_name(name: str) -> str:
    """张三丰 → 张**; keeps the family name only."""
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678."""
    digits = re.sub(r"\s", "", phone)
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) < 8:
        return "*" * (len(digits) - 4) + digits[-4:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id(value: str) -> str:
    return value[:2] + "*" * max(1, len(value) - 4) + value[-2:] if len(value) > 4 else "****"


def mask_address(value: str) -> str:
    """上海市黄浦区南京东路100号3室 → 上海市黄浦区南京**********: keeps the area only."""
    keep = min(8, len(value) // 2)
    return value[:keep] + "*" * max(1, len(value) - keep)


PHONE_KEYS = frozenset({"phone", "mobile", "tel", "telephone", "contact_phone"})
ID_KEYS = frozenset({"id_number", "id_card", "idcard", "identity_number"})
ADDRESS_KEYS = frozenset({"address", "home_address"})
PERSON_KEYS = frozenset({"complainant", "reporter", "contact"})
PERSONAL_FIELDS = ("name", "phone", "id_number", "address")
"""What counts as personal data (个人信息) in every response, log line and dead letter."""


def _mask_person(person: dict[str, Any], seen: dict[str, str]) -> bool:
    found = False
    for key, value in list(person.items()):
        if not isinstance(value, str) or not value:
            continue
        if key == "name":
            person[key] = mask_name(value)
        elif key in PHONE_KEYS:
            person[key] = mask_phone(value)
        elif key in ID_KEYS or key == "id":
            person[key] = mask_id(value)
        elif key in ADDRESS_KEYS:
            person[key] = mask_address(value)
        else:
            continue
        seen[value] = person[key]
        found = True
    return found


def _mask_fields(node: Any, seen: dict[str, str]) -> bool:
    """Mask every personal-data field under ``node``; ``seen`` maps each original value to
    its mask (the same value quoted in free text is masked by :func:`_mask_quotes`)."""
    found = False
    if isinstance(node, list):
        for item in node:
            found = _mask_fields(item, seen) or found
        return found
    if not isinstance(node, dict):
        return False
    individual = node.get("party_type") == "individual"
    for key, value in list(node.items()):
        if key in PERSON_KEYS and isinstance(value, dict):
            found = _mask_person(value, seen) or found
        elif key == "party" and isinstance(value, dict):
            if value.get("type") == "individual":
                found = _mask_person(value, seen) or found
        elif key == "party_name" and individual and isinstance(value, str) and value:
            node[key] = seen[value] = mask_name(value)
            found = True
        elif isinstance(value, str) and value:
            if key in PHONE_KEYS:
                node[key] = mask_phone(value)
            elif key in ID_KEYS:
                node[key] = mask_id(value)
            elif key in ADDRESS_KEYS:
                node[key] = mask_address(value)
            else:
                continue
            seen[value] = node[key]
            found = True
        elif isinstance(value, dict | list):
            found = _mask_fields(value, seen) or found
    return found


def _mask_quotes(node: Any, seen: dict[str, str]) -> Any:
    """Personal data quoted in free text (a notice's text quoting the address) masked too."""
    if isinstance(node, str):
        for original, masked in seen.items():
            if len(original) >= 2 and original in node:
                node = node.replace(original, masked)
        return node
    if isinstance(node, list):
        return [_mask_quotes(v, seen) for v in node]
    if isinstance(node, dict):
        return {k: _mask_quotes(v, seen) for k, v in node.items()}
    return node


def mask_tree(value: Any) -> tuple[Any, bool]:
    """A masked deep copy of a JSON-like value, and whether it held personal data."""
    out = copy.deepcopy(value)
    seen: dict[str, str] = {}
    found = _mask_fields(out, seen)
    return (_mask_quotes(out, seen) if found else out), found


def has_personal_data(value: Any) -> bool:
    return mask_tree(value)[1]


PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{2})\d{14}(\d{1}[0-9Xx])(?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    """Free text (log lines, dead-letter bodies): JSON is masked field by field; mobile
    numbers and 18-digit ID numbers anywhere are masked by pattern."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            masked, found = mask_tree(json.loads(stripped))
            if found:
                text = json.dumps(masked, ensure_ascii=False)
        except ValueError:
            pass
    text = PHONE_RE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return ID_RE.sub(lambda m: f"{m.group(1)}{'*' * 14}{m.group(2)}", text)


def present(caller: Caller, doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document as this caller may see it, before it is cut to a response model:
    masked for roles without personal data (so free text quoting a masked field, e.g. a
    notice's summary quoting the address, is masked even where the field is left out);
    for the others it is noted for the audit record of this request."""
    masked, found = mask_tree(doc)
    if not found:
        return doc
    if not caller.pii:
        return dict(masked)
    caller.reads.append(str(doc.get("_id", doc.get("id"))))
    return doc


def ids_of(body: Any) -> list[str]:
    """The ids of the objects a response carries (for the audit record)."""
    if isinstance(body, dict):
        if isinstance(body.get("items"), list):
            return [str(i.get("id")) for i in body["items"] if isinstance(i, dict)][:200]
        if "id" in body:
            return [str(body["id"])]
    return []


# ------------------------------------------------------------------ guarded routers

AuditHook = Callable[[Caller, Request, list[str]], Awaitable[None]]


class GuardedRoute(APIRoute):
    """A route whose JSON answer is masked by the caller's role; unmasked personal data in
    an answer is reported to the router's audit hook before the answer leaves."""

    audit: AuditHook | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        hook = type(self).audit

        async def guarded(request: Request) -> Response:
            response = await handler(request)
            caller = getattr(request.state, "caller", None)
            media = response.headers.get("content-type", "")
            if not media.startswith("application/json") or not hasattr(response, "body"):
                return response
            body = json.loads(bytes(response.body) or b"null")
            masked, found = mask_tree(body)
            pending = caller.reads if isinstance(caller, Caller) else []
            if not found and not pending:
                return response
            if not isinstance(caller, Caller) or not caller.pii:
                return _json_response(masked, response) if found else response
            if hook is not None:
                await hook(caller, request, ids_of(body) or pending)
            return response

        return guarded


def _json_response(body: Any, like: Response) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {k: v for k, v in like.headers.items() if k.lower() != "content-length"}
    return Response(content, status_code=like.status_code, headers=headers)


def guarded_router(audit: AuditHook | None = None, **kwargs: Any) -> APIRouter:
    """An APIRouter where every route needs a token and every answer is masked by role."""
    route_class = type(
        "Guarded", (GuardedRoute,), {"audit": staticmethod(audit) if audit else None}
    )
    dependencies = [Depends(authenticate), *kwargs.pop("dependencies", [])]
    return APIRouter(route_class=route_class, dependencies=dependencies, **kwargs)
