"""HTTP API of the hotline service: complaints (``/v1/complaints``: list, one with its
timeline, unit actions) and the routing catalogue (``/v1/routing``: read, preview, update).

Every route needs a bearer token (``shared.identity``): lists and reads are limited to the
caller's district or unit (another district's complaint answers 404), personal data is masked
by role. Unit actions act as the unit in the token (``deps.UnitActions``). Lists are paginated
(``limit``, ``offset``) and filterable; bad input answers 4xx, never 500. Routes parse, call
the workflow (``services.hotline.handlers``) or the read side (``services.hotline.reads``) and
shape the answer (``schemas``).
"""

from __future__ import annotations

from fastapi import APIRouter

from services.hotline.api import complaints, routing

router = APIRouter()
for concern in (complaints, routing):
    router.include_router(concern.router)
