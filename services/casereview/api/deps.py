"""What the casereview routes depend on: the service's handlers by concern and its
reference data (given with ``Service.provide``), and the checks of who may do what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException

from services.casereview import reads
from services.casereview.domain.commands import CampaignSpec
from services.casereview.domain.rubric import ReviewError
from services.casereview.handlers.campaigns import Campaigns
from services.casereview.handlers.rectification import Rectifications
from services.casereview.handlers.scoring import Scoring
from services.casereview.reference import ReferenceData
from shared.api import component, run_command
from shared.identity import Caller, Permission, Role, district_in_scope
from shared.mongo import Document
from shared.service import Service
from shared.unit_of_work import UnitOfWork

T = TypeVar("T")

ReferenceDep = Annotated[ReferenceData, Depends(component(ReferenceData))]
CampaignsDep = Annotated[Campaigns, Depends(component(Campaigns))]
ScoringDep = Annotated[Scoring, Depends(component(Scoring))]
RectificationsDep = Annotated[Rectifications, Depends(component(Rectifications))]


@contextmanager
def rubric_problems_as_422() -> Iterator[None]:
    """Decisions that do not fit the rubric (``ReviewError``) answer 422 with the problems."""
    try:
        yield
    except ReviewError as exc:
        raise HTTPException(422, detail=exc.problems) from exc


async def guarded(svc: Service, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """One transaction; refusals become 4xx with the reason (a rubric problem: 422)."""
    with rubric_problems_as_422():
        return await run_command(svc, work)


def may_draw(caller: Caller, spec: CampaignSpec) -> None:
    """A supervisor draws; a district bureau only within its district, which it names."""
    caller.require(Permission.SUPERVISE)
    if not caller.scope:
        return
    if not spec.districts:
        raise HTTPException(403, detail="a district bureau names its district")
    for district in spec.districts:
        district_in_scope(caller, district)
    for unit in spec.units:
        district_in_scope(caller, unit.split("-", 1)[0])


async def may_score(svc: Service, caller: Caller, review_id: str, reviewer_id: str) -> Document:
    """A reviewer scores as itself (the token's subject), a review in its scope."""
    caller.require(Permission.SCORE)
    review = await reads.REVIEWS.one(svc, caller, review_id)
    if caller.role is Role.REVIEWER and reviewer_id != caller.sub:
        raise HTTPException(403, detail=f"the token is reviewer {caller.sub}, not {reviewer_id}")
    return review
