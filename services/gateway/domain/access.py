"""Who may see what (权限与数据范围): the gateway's view of :mod:`shared.identity`.

Roles, permissions, the data scope and personal-data masking are shared by every service
(``shared/identity/``); the gateway issues the tokens that carry them. Every read goes
through :func:`scope_filter`: it turns the caller into the one MongoDB filter that every query
of the read API is combined with, so a district supervisor can only ever see her district and
a unit officer only his unit's items.
"""

from __future__ import annotations

from typing import Any

from shared.identity import (
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
    has_personal_data,
    mask_id,
    mask_name,
    mask_phone,
    mask_tree,
    scope_filter,
    within,
)

__all__ = [
    "ROLE_PERMISSIONS",
    "Permission",
    "Principal",
    "Role",
    "has_personal_data",
    "mask_id",
    "mask_name",
    "mask_personal_data",
    "mask_phone",
    "scope_filter",
    "within",
]


def mask_personal_data(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A copy with the complainant (投诉人) and individual parties (自然人当事人) masked."""
    masked: dict[str, Any] = mask_tree(snapshot)[0]
    return masked
