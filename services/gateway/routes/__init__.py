"""The gateway's HTTP API, one module-level router per concern.

``ingest`` (``POST /v1/events``), ``login`` (token, ``/v1/me``), ``read`` (entities, overview,
open data, the live feed), ``export`` (CSV), ``leads`` (list, dispose), ``ops`` (quarantine,
refusals, dead letters, health, lag, audit chain) and ``console`` (the static operations
console). Routes reach the service through ``services.gateway.deps``; the work is done by
``ingest``, ``leads``, ``reads`` and ``ops``, the queries by ``queries`` and ``storage``.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.routes import console, export, ingest, leads, login, ops, read

router = APIRouter()
for concern in (ingest, login, read, export, leads, ops, console):
    router.include_router(concern.router)
