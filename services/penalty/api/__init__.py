"""HTTP API of the penalty service under ``/v1/penalty``, one module-level router per
concern: ``filings`` (the decided penalties, filing them, classification, review),
``findings`` (flags, fine anomalies), ``letters`` (and the unit's replies), ``catalogue``.

Every route needs a bearer token (``shared.identity``): lists and reads are limited to the
caller's district or unit (another district's object answers 404); a unit files and replies
only as the unit in its token (a body naming another unit → 403); classification and review
are the supervising bureaus'. Lists are paginated (``limit``, ``offset``) and filterable; bad
input answers 4xx with the reason, never 500. Routes reach the workflow and the catalogue
through ``api.deps``; reads are in ``services.penalty.reads``.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.penalty.api import catalogue, filings, findings, letters

router = APIRouter()
for concern in (filings, findings, letters, catalogue):
    router.include_router(concern.router)
