"""What the gateway's routes depend on: the running service and the authorised caller.

``GatewayDep`` is the :class:`~services.gateway.context.GatewayService` serving the request;
each ``*Caller`` alias is the caller holding one permission, with its data scope (403 when the
role lacks it, 401 without a valid bearer token). The token comes in the ``Authorization``
header or, for ``EventSource`` clients that cannot set headers, as ``access_token``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from services.gateway.context import GatewayService
from shared.identity import Caller, Permission, Principal, caller_of, decode_token, oauth2


def gateway(request: Request) -> GatewayService:
    service = request.app.state.service
    assert isinstance(service, GatewayService)
    return service


GatewayDep = Annotated[GatewayService, Depends(gateway)]


async def principal(
    gw: GatewayDep,
    token: str | None = Depends(oauth2),
    access_token: str | None = Query(
        default=None, description="Bearer token for EventSource clients (SSE only)."
    ),
) -> Principal:
    """The verified holder of the request's bearer token."""
    raw = token or access_token
    if not raw:
        raise HTTPException(
            401, detail="bearer token required", headers={"WWW-Authenticate": "Bearer"}
        )
    return decode_token(gw.settings, raw)


PrincipalDep = Annotated[Principal, Depends(principal)]


def holding(permission: Permission) -> Callable[..., Awaitable[Caller]]:
    """Dependency: the caller must hold ``permission``; yields the caller and its scope."""

    async def dependency(who: PrincipalDep, gw: GatewayDep) -> Caller:
        if not who.can(permission):
            raise HTTPException(403, detail=f"role {who.role.value} lacks {permission.value}")
        return caller_of(gw.settings, who)

    dependency.__name__ = f"holding_{permission.name.lower()}"
    return dependency


OverviewCaller = Annotated[Caller, Depends(holding(Permission.READ_OVERVIEW))]
LeadsCaller = Annotated[Caller, Depends(holding(Permission.READ_LEADS))]
DisposeCaller = Annotated[Caller, Depends(holding(Permission.DISPOSE_LEADS))]
FeedCaller = Annotated[Caller, Depends(holding(Permission.READ_FEED))]
QuarantineCaller = Annotated[Caller, Depends(holding(Permission.READ_QUARANTINE))]
OpsCaller = Annotated[Caller, Depends(holding(Permission.READ_OPS))]
ReplayCaller = Annotated[Caller, Depends(holding(Permission.REPLAY))]
AuditCaller = Annotated[Caller, Depends(holding(Permission.AUDIT))]
InspectionsCaller = Annotated[Caller, Depends(holding(Permission.READ_INSPECTIONS))]

READ_PERMISSIONS = {
    "complaints": Permission.READ_COMPLAINTS,
    "cases": Permission.READ_CASES,
    "filings": Permission.READ_FILINGS,
    "notices": Permission.READ_NOTICES,
    "inspections": Permission.READ_INSPECTIONS,
    "officers": Permission.READ_INSPECTIONS,
    "leads": Permission.READ_LEADS,
}
"""What each read model's list, items and export need."""
