"""One identity for every API (统一身份): roles, token verification, data scope, masking.

By concern:

* :mod:`~shared.identity.access`: roles, permissions, the principal and its data scope
  (数据范围), and the checks routes make (:func:`require_in_scope`: another district's or
  unit's object → 404; :func:`acting_unit`: a body naming another unit → 403);
* :mod:`~shared.identity.tokens`: the ``JIANDU_JWT_*`` settings, issuing and verifying tokens;
* :mod:`~shared.identity.masking`: personal data masked by role (name, phone, ID number,
  address) in answers, log lines and dead letters;
* :mod:`~shared.identity.routes`: the verified caller of a request (``caller: CallerDep``)
  and :func:`guarded_router`, whose answers are masked and whose unmasked reads are audited.

Everything public is re-exported here: ``from shared.identity import CallerDep``.
"""

from __future__ import annotations

from shared.identity.access import (
    ROLE_PERMISSIONS,
    Caller,
    Permission,
    Principal,
    Role,
    acting_person,
    acting_unit,
    district_in_scope,
    in_scope,
    rename_scope,
    require_in_scope,
    scope_filter,
    within,
)
from shared.identity.masking import (
    ADDRESS_KEYS,
    ID_KEYS,
    ID_RE,
    PERSON_KEYS,
    PERSONAL_FIELDS,
    PHONE_KEYS,
    PHONE_RE,
    has_personal_data,
    ids_of,
    mask_address,
    mask_id,
    mask_name,
    mask_phone,
    mask_text,
    mask_tree,
    present,
)
from shared.identity.routes import (
    AuditHook,
    CallerDep,
    GuardedRoute,
    authenticate,
    caller_of,
    guarded_router,
    oauth2,
)
from shared.identity.tokens import (
    DEV_JWT_SECRET,
    LOOPBACK,
    IdentitySettings,
    decode_token,
    issue_token,
    service_token,
)

__all__ = [
    "ADDRESS_KEYS",
    "DEV_JWT_SECRET",
    "ID_KEYS",
    "ID_RE",
    "LOOPBACK",
    "PERSONAL_FIELDS",
    "PERSON_KEYS",
    "PHONE_KEYS",
    "PHONE_RE",
    "ROLE_PERMISSIONS",
    "AuditHook",
    "Caller",
    "CallerDep",
    "GuardedRoute",
    "IdentitySettings",
    "Permission",
    "Principal",
    "Role",
    "acting_person",
    "acting_unit",
    "authenticate",
    "caller_of",
    "decode_token",
    "district_in_scope",
    "guarded_router",
    "has_personal_data",
    "ids_of",
    "in_scope",
    "issue_token",
    "mask_address",
    "mask_id",
    "mask_name",
    "mask_phone",
    "mask_text",
    "mask_tree",
    "oauth2",
    "present",
    "rename_scope",
    "require_in_scope",
    "scope_filter",
    "service_token",
    "within",
]
