"""HTTP API of the casereview service under ``/v1/casereview``, one module-level router per
concern: ``cases`` (the files, their pre-check, the unit's 自查), ``reference_data`` (the
rubric, the reviewer directory), ``campaigns`` (draw, population, verification), ``reviews``
(preview, score), ``rectifications`` (answer, close) and ``reports`` (JSON and CSV).

Lists are paginated (``limit``, ``offset``) and filterable; bad input answers 4xx with the
reason, never 500. Scores and grades are computed from the reviewer's decisions: no request
carries a score.

Every route needs a bearer token (``shared.identity``): lists, reads and reports are limited to
the caller's district or unit (another district's object answers 404); a reviewer scores only
as itself (the token's subject), a unit answers a rectification only as the token's unit.
Routes reach the handlers and reference data through ``api.deps``; reads are in ``reads``.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.casereview.api import (
    campaigns,
    cases,
    rectifications,
    reference_data,
    reports,
    reviews,
)

router = APIRouter()
for concern in (cases, reference_data, campaigns, reviews, rectifications, reports):
    router.include_router(concern.router)
