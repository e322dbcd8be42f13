"""Who may do what, and on which data (权限与数据范围): roles, permissions, the principal a
token carries, its data scope, and the checks routes make on objects and bodies.

Out of scope answers like a missing object (404), so ids of other districts do not leak; a
body naming another unit or person than the token's is refused (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, model_validator

from shared.city import CITY_BUREAU


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
    principal = caller.principal
    if principal.unit:
        own = principal.unit
    elif principal.role is Role.DISTRICT_SUPERVISOR:
        own = f"{principal.district}-sfj"
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
