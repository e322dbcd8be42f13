"""HTTP API of the inspection service under ``/v1/inspection``: inspections, plans and a
district summary (frequency per enterprise, 亮码率, 未备案 count) in ``inspections``; the
officer registry, review outcomes, 持证率 / 被纠错率 and flags in ``supervision``.

Every route needs a bearer token with ``READ_INSPECTIONS`` and sees only the caller's district
or unit. Lists are paginated (``limit``, ``offset``) and filterable; bad input answers 4xx
with the reason, never 500. Routes parse, call the read side (``services.inspection.reads``)
and answer with its read models (``services.inspection.schemas``).
"""

from __future__ import annotations

from fastapi import APIRouter

from services.inspection.api import inspections, supervision

router = APIRouter()
for concern in (inspections, supervision):
    router.include_router(concern.router)
