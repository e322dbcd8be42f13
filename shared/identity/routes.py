"""Guarded routers: the verified caller of a request, and answers masked by role.

On a :func:`guarded_router` every route needs a valid token (anonymous → 401, bad token →
401), every JSON answer is masked by role (:func:`~shared.identity.masking.mask_tree`) and
every unmasked personal-data read is reported to an audit hook (the services emit a
``jiandu.audit.read`` event that the gateway chains into its audit log).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer

from shared.identity.access import Caller, Principal, scope_filter
from shared.identity.masking import ids_of, mask_tree
from shared.identity.tokens import IdentitySettings, decode_token

oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def caller_of(settings: IdentitySettings, principal: Principal) -> Caller:
    """The caller with its data scope; whether it sees personal data unmasked is the
    settings' ``pii_roles``."""
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
