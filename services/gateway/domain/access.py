"""Who may see what (权限与数据范围): roles, permissions, data scope and personal-data masking.

Every read goes through :func:`scope_filter`: it turns the caller into the one MongoDB filter
that every query of the read API is combined with, so a district supervisor can only ever
see her district and a unit officer only his unit's items.
"""

from __future__ import annotations

import copy
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, model_validator


class Role(StrEnum):
    CITY_SUPERVISOR = "city_supervisor"  # 市司法局
    DISTRICT_SUPERVISOR = "district_supervisor"  # 区司法局
    UNIT_OFFICER = "unit_officer"  # 执法部门/街镇
    REVIEWER = "reviewer"  # 评查人员
    OPERATOR = "operator"  # 运维


class Permission(StrEnum):
    READ_OVERVIEW = "overview:read"
    READ_COMPLAINTS = "complaints:read"
    READ_CASES = "cases:read"
    READ_FILINGS = "filings:read"
    READ_LEADS = "leads:read"
    DISPOSE_LEADS = "leads:dispose"
    READ_NOTICES = "notices:read"
    READ_FEED = "feed:read"
    READ_QUARANTINE = "quarantine:read"
    READ_OPS = "ops:read"  # health, consumer lag, dead letters
    REPLAY = "deadletters:replay"
    AUDIT = "audit:verify"


_SUPERVISION = {
    Permission.READ_OVERVIEW,
    Permission.READ_COMPLAINTS,
    Permission.READ_CASES,
    Permission.READ_FILINGS,
    Permission.READ_LEADS,
    Permission.READ_NOTICES,
    Permission.READ_FEED,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CITY_SUPERVISOR: frozenset(
        _SUPERVISION
        | {Permission.DISPOSE_LEADS, Permission.READ_QUARANTINE, Permission.READ_OPS}
        | {Permission.AUDIT}
    ),
    Role.DISTRICT_SUPERVISOR: frozenset(_SUPERVISION | {Permission.DISPOSE_LEADS}),
    Role.UNIT_OFFICER: frozenset(_SUPERVISION),
    Role.REVIEWER: frozenset({Permission.READ_OVERVIEW, Permission.READ_CASES}),
    Role.OPERATOR: frozenset(
        {
            Permission.READ_OVERVIEW,
            Permission.READ_FEED,
            Permission.READ_QUARANTINE,
            Permission.READ_OPS,
            Permission.REPLAY,
            Permission.AUDIT,
        }
    ),
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


def mask_personal_data(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A copy with the complainant (投诉人) and individual parties (自然人当事人) masked."""
    out = copy.deepcopy(snapshot)
    person = out.get("complainant")
    if isinstance(person, dict):
        if isinstance(person.get("name"), str):
            person["name"] = mask_name(person["name"])
        if isinstance(person.get("phone"), str):
            person["phone"] = mask_phone(person["phone"])
    party = out.get("party")
    if isinstance(party, dict) and party.get("type") == "individual":
        if isinstance(party.get("name"), str):
            party["name"] = mask_name(party["name"])
        if isinstance(party.get("id"), str):
            party["id"] = mask_id(party["id"])
    return out


def has_personal_data(snapshot: dict[str, Any]) -> bool:
    party = snapshot.get("party")
    return isinstance(snapshot.get("complainant"), dict) or (
        isinstance(party, dict) and party.get("type") == "individual"
    )
