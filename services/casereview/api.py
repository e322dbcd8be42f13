"""HTTP API of the casereview service under ``/v1/casereview``: cases and their pre-check,
campaigns (draw, population, verification), reviews (preview, score), rectifications
(answer, close), reports (JSON and CSV), the rubric and the reviewer directory.

Lists are paginated (``limit``, ``offset``) and filterable; bad input answers 4xx with the
reason, never 500. Scores and grades are computed from the reviewer's decisions: no request
carries a score.

Every route needs a bearer token (``shared.identity``): lists, reads and reports are limited to
the caller's district or unit (another district's object answers 404); a reviewer scores only
as itself (the token's subject), a unit answers a rectification only as the token's unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from services.casereview import storage
from services.casereview.domain.precheck import Finding
from services.casereview.domain.records import Campaign, Review, SelfReview
from services.casereview.domain.reports import (
    GroupBy,
    Report,
    ReviewRow,
    build_report,
    previous_period,
    to_csv,
)
from services.casereview.domain.rubric import Proposal, ReviewError, Rubric, ScoreSheet
from services.casereview.domain.sampling import Reviewer
from services.casereview.handlers import (
    CampaignSpec,
    CaseReviewWorkflow,
    RectificationAnswer,
    RectificationVerdict,
    ScoreSubmission,
    SelfReviewSubmission,
)
from shared.api import (
    Out,
    Page,
    ScopedReads,
    audited_router,
    limit_param,
    offset_param,
    run_command,
)
from shared.city import load_city
from shared.identity import (
    Caller,
    CallerDep,
    Permission,
    Role,
    acting_unit,
    district_in_scope,
    in_scope,
    rename_scope,
    within,
)
from shared.mongo import Document, page
from shared.service import Service
from shared.unit_of_work import UnitOfWork

T = TypeVar("T")


class CaseSummary(Out):
    id: str = Field(description="case_id")
    district: str
    unit: str
    status: str
    procedure: str
    matter: str
    closed_on: str
    decision: dict[str, Any]
    finding_codes: list[str]
    campaign_id: str | None = None
    review_id: str | None = None
    reviewer_id: str | None = None
    grade: str | None = None
    score: float | None = None
    rectification_id: str | None = None
    rectification_status: str | None = None
    rectification_deadline: dt.datetime | None = None
    self_review: SelfReview | None = None
    updated_at: dt.datetime


class CaseDetail(CaseSummary):
    file: dict[str, Any]
    findings: list[Finding]
    revision: int
    received_at: dt.datetime
    ignored_revisions: list[dict[str, Any]] = Field(default_factory=list)


class CampaignSummary(Out):
    id: str
    name: str
    period_from: str
    period_to: str
    units: list[str]
    districts: list[str]
    k_per_unit: int | None
    percent: str | None
    seed: str
    algorithm: str
    population_size: int
    population_hash: str
    directory_version: str
    rubric_version: str
    created_at: dt.datetime
    status: str


class CampaignOut(CampaignSummary):
    sample: list[str]
    assignments: dict[str, str] = Field(description="case_id → reviewer_id")
    reviewers: list[Reviewer]


class CampaignPopulation(Out):
    """Everything a third party needs to re-draw (see SAMPLING.md)."""

    id: str
    seed: str
    algorithm: str
    k_per_unit: int | None
    percent: str | None
    population: list[tuple[str, str]] = Field(description="[case_id, unit], by case_id")
    population_hash: str
    reviewers: list[Reviewer]


class Verification(BaseModel):
    campaign_id: str
    algorithm: str
    seed: str
    population_hash: str
    population_hash_matches: bool
    sample_matches: bool
    assignments_match: bool
    sample: list[str]
    assignments: dict[str, str]


class ReviewOut(Out):
    id: str
    campaign_id: str
    case_id: str
    unit: str
    district: str
    closed_on: str
    reviewer_id: str
    reviewer_unit: str
    status: str
    rubric_version: str
    proposals: list[Proposal] = Field(description="pre-filled from the pre-check findings")
    self_review: SelfReview | None = Field(
        default=None, description="the unit's self-review (自查), next to the pre-check's"
    )
    assigned_at: dt.datetime
    sheet: ScoreSheet | None = None
    grade: str | None = None
    score: float | None = None
    failed: bool | None = None
    comment: str | None = None
    scored_at: dt.datetime | None = None


class RectificationOut(Out):
    id: str
    case_id: str
    review_id: str
    campaign_id: str
    unit: str
    district: str
    kind: Literal["failed", "deductions"] = Field(
        default="failed", description="failed: 不合格, escalated; deductions: problems to fix"
    )
    grade: str
    score: float
    vetoes: list[str]
    issues: list[dict[str, Any]]
    status: Literal["open", "overdue", "answered", "closed"]
    round: int
    required_at: dt.datetime
    deadline: dt.datetime
    overdue: bool
    overdue_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    answers: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]


class RubricInfo(BaseModel):
    current: str
    versions: list[str]
    rubric: Rubric


def _set(query: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        query[key] = value


CAMPAIGN_SCOPE = {"district": "districts", "unit": "units"}
"""A campaign lists its districts and units: the scope fields have those names there."""


def build_router(svc: Service, workflow: CaseReviewWorkflow) -> APIRouter:
    router = audited_router(prefix="/v1/casereview", tags=["casereview"])
    city = load_city()

    async def guarded(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """One transaction; refusals become 4xx with the reason (a rubric problem: 422)."""
        try:
            return await run_command(svc, work)
        except ReviewError as exc:
            raise HTTPException(422, detail=exc.problems) from exc

    reads = ScopedReads(svc, Permission.READ_CASES)

    # ------------------------------------------------------------------ cases

    @router.get("/cases", response_model=Page[CaseSummary])
    async def list_cases(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        status: str | None = None,
        grade: str | None = None,
        finding: str | None = Query(None, description="a pre-check code, e.g. DOC_MISSING"),
        closed_from: dt.date | None = None,
        closed_to: dt.date | None = None,
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> Page[CaseSummary]:
        """Case files with their pre-check result and review state."""
        caller.require(Permission.READ_CASES)
        query: dict[str, Any] = {}
        _set(query, "district", district)
        _set(query, "unit", unit)
        _set(query, "status", status)
        _set(query, "grade", grade)
        _set(query, "finding_codes", finding)
        closed: dict[str, str] = {}
        if closed_from:
            closed["$gte"] = closed_from.isoformat()
        if closed_to:
            closed["$lte"] = closed_to.isoformat()
        if closed:
            query["closed_on"] = closed
        total, docs = await page(
            svc.db,
            storage.CASES,
            within(caller.scope, query),
            sort=storage.CASES_ORDER,
            limit=limit,
            offset=offset,
            projection={"file": 0, "findings": 0},
        )
        return Page(
            total=total, limit=limit, offset=offset, items=[CaseSummary.of(d) for d in docs]
        )

    @router.get("/cases/{case_id}", response_model=CaseDetail)
    async def get_case(case_id: str, caller: CallerDep) -> CaseDetail:
        """One case file: the file as received, every finding with its rule and evidence."""
        return CaseDetail.of(await reads.one(caller, storage.CASES, case_id, "case"))

    @router.post("/cases/{case_id}/self-review", response_model=CaseDetail)
    async def submit_self_review(
        case_id: str, submission: SelfReviewSubmission, caller: CallerDep
    ) -> CaseDetail:
        """The unit's self-review (自查) and 书面自评报告 of its case, as the token's unit;
        a resubmission replaces it until the review starts (then 409)."""
        unit = acting_unit(caller, submission.unit)
        await reads.one(caller, storage.CASES, case_id, "case")
        doc = await guarded(lambda uow: workflow.submit_self_review(uow, case_id, unit, submission))
        return CaseDetail.of(doc.to_doc())

    # ------------------------------------------------------------------ reference data

    @router.get("/rubric", response_model=RubricInfo)
    async def get_rubric(version: str | None = None) -> RubricInfo:
        """The scoring rubric (current version, or the one asked for)."""
        rubric = workflow.rubrics.get(version) if version else workflow.rubric
        if rubric is None:
            raise HTTPException(404, detail=f"rubric version {version} not found")
        return RubricInfo(
            current=workflow.rubric.version, versions=sorted(workflow.rubrics), rubric=rubric
        )

    @router.get("/reviewers", response_model=Page[Reviewer])
    async def list_reviewers(
        district: str | None = None,
        unit: str | None = None,
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> Page[Reviewer]:
        """The reviewer directory (评查人员名录)."""
        rows = [
            r
            for r in workflow.directory.reviewers
            if (district is None or r.district == district) and (unit is None or r.unit == unit)
        ]
        return Page(
            total=len(rows), limit=limit, offset=offset, items=rows[offset : offset + limit]
        )

    # ------------------------------------------------------------------ campaigns

    @router.post("/campaigns", response_model=CampaignOut, status_code=201)
    async def create_campaign(spec: CampaignSpec, caller: CallerDep) -> CampaignOut:
        """Draw a 双随机 sample and assign reviewers; the seed is published with the result.
        A district bureau draws only within its district (it names it in ``districts``)."""
        caller.require(Permission.SUPERVISE)
        if caller.scope:
            if not spec.districts:
                raise HTTPException(403, detail="a district bureau names its district")
            for district in spec.districts:
                district_in_scope(caller, district)
            for unit in spec.units:
                district_in_scope(caller, unit.split("-", 1)[0])
        doc = await guarded(lambda uow: workflow.create_campaign(uow, spec))
        return CampaignOut.of(doc.to_doc())

    @router.get("/campaigns", response_model=Page[CampaignSummary])
    async def list_campaigns(
        caller: CallerDep, limit: int = limit_param(), offset: int = offset_param()
    ) -> Page[CampaignSummary]:
        caller.require(Permission.READ_CASES)
        total, docs = await page(
            svc.db,
            storage.CAMPAIGNS,
            rename_scope(caller.scope, CAMPAIGN_SCOPE),
            sort=storage.CAMPAIGNS_ORDER,
            limit=limit,
            offset=offset,
            projection={"population": 0, "sample": 0, "assignments": 0},
        )
        return Page(
            total=total, limit=limit, offset=offset, items=[CampaignSummary.of(d) for d in docs]
        )

    @router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
    async def get_campaign(campaign_id: str, caller: CallerDep) -> CampaignOut:
        return CampaignOut.of(
            await reads.one(caller, storage.CAMPAIGNS, campaign_id, "campaign", CAMPAIGN_SCOPE)
        )

    @router.get("/campaigns/{campaign_id}/population", response_model=CampaignPopulation)
    async def get_population(campaign_id: str, caller: CallerDep) -> CampaignPopulation:
        """The published draw input: population, seed, quota, reviewers."""
        return CampaignPopulation.of(
            await reads.one(caller, storage.CAMPAIGNS, campaign_id, "campaign", CAMPAIGN_SCOPE)
        )

    @router.get("/campaigns/{campaign_id}/verify", response_model=Verification)
    async def verify_campaign(campaign_id: str, caller: CallerDep) -> Verification:
        """Re-draw from the recorded input and compare with the recorded result."""
        doc = await reads.one(caller, storage.CAMPAIGNS, campaign_id, "campaign", CAMPAIGN_SCOPE)
        return Verification.model_validate(workflow.verify_campaign(Campaign.from_doc(doc)))

    # ------------------------------------------------------------------ reviews

    @router.get("/reviews", response_model=Page[ReviewOut])
    async def list_reviews(
        caller: CallerDep,
        campaign_id: str | None = None,
        reviewer_id: str | None = None,
        status: Literal["assigned", "scored"] | None = None,
        unit: str | None = None,
        district: str | None = None,
        grade: str | None = None,
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> Page[ReviewOut]:
        query: dict[str, Any] = {}
        _set(query, "campaign_id", campaign_id)
        _set(query, "reviewer_id", reviewer_id)
        _set(query, "status", status)
        _set(query, "unit", unit)
        _set(query, "district", district)
        _set(query, "grade", grade)
        caller.require(Permission.READ_CASES)
        total, docs = await page(
            svc.db,
            storage.REVIEWS,
            within(caller.scope, query),
            sort=storage.REVIEWS_ORDER,
            limit=limit,
            offset=offset,
        )
        return Page(total=total, limit=limit, offset=offset, items=[ReviewOut.of(d) for d in docs])

    @router.get("/reviews/{review_id}", response_model=ReviewOut)
    async def get_review(review_id: str, caller: CallerDep) -> ReviewOut:
        """A review with its proposed deductions (pre-filled from the pre-check)."""
        return ReviewOut.of(await reads.one(caller, storage.REVIEWS, review_id, "review"))

    async def reviewer_may_score(caller: Caller, review_id: str, reviewer_id: str) -> Document:
        """A reviewer scores as itself (the token's subject), a review in its scope."""
        caller.require(Permission.SCORE)
        review = await reads.one(caller, storage.REVIEWS, review_id, "review")
        if caller.role is Role.REVIEWER and reviewer_id != caller.sub:
            raise HTTPException(
                403, detail=f"the token is reviewer {caller.sub}, not {reviewer_id}"
            )
        return review

    @router.post("/reviews/{review_id}/preview", response_model=ScoreSheet)
    async def preview_review(
        review_id: str, submission: ScoreSubmission, caller: CallerDep
    ) -> ScoreSheet:
        """The sheet these decisions would give, without saving anything."""
        review = await reviewer_may_score(caller, review_id, submission.reviewer_id)
        try:
            return workflow.preview(Review.from_doc(review), submission)
        except ReviewError as exc:
            raise HTTPException(422, detail=exc.problems) from exc

    @router.post("/reviews/{review_id}/score", response_model=ReviewOut)
    async def score_review(
        review_id: str, submission: ScoreSubmission, caller: CallerDep
    ) -> ReviewOut:
        """Record the decisions; score and grade are computed; 不合格 orders rectification."""
        await reviewer_may_score(caller, review_id, submission.reviewer_id)
        doc = await guarded(lambda uow: workflow.score_review(uow, review_id, submission))
        return ReviewOut.of(doc.to_doc())

    # ------------------------------------------------------------------ rectifications

    @router.get("/rectifications", response_model=Page[RectificationOut])
    async def list_rectifications(
        caller: CallerDep,
        status: Literal["open", "overdue", "answered", "closed"] | None = None,
        unit: str | None = None,
        district: str | None = None,
        overdue: bool | None = None,
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> Page[RectificationOut]:
        query: dict[str, Any] = {}
        _set(query, "status", status)
        _set(query, "unit", unit)
        _set(query, "district", district)
        _set(query, "overdue", overdue)
        caller.require(Permission.READ_CASES)
        total, docs = await page(
            svc.db,
            storage.RECTIFICATIONS,
            within(caller.scope, query),
            sort=storage.RECTIFICATIONS_ORDER,
            limit=limit,
            offset=offset,
        )
        return Page(
            total=total, limit=limit, offset=offset, items=[RectificationOut.of(d) for d in docs]
        )

    @router.get("/rectifications/{rect_id}", response_model=RectificationOut)
    async def get_rectification(rect_id: str, caller: CallerDep) -> RectificationOut:
        return RectificationOut.of(
            await reads.one(caller, storage.RECTIFICATIONS, rect_id, "rectification")
        )

    @router.post("/rectifications/{rect_id}/answer", response_model=RectificationOut)
    async def answer_rectification(
        rect_id: str, answer: RectificationAnswer, caller: CallerDep
    ) -> RectificationOut:
        """The unit reports what it rectified (整改报告), as the token's unit."""
        unit = acting_unit(caller, answer.unit)
        await reads.one(caller, storage.RECTIFICATIONS, rect_id, "rectification")
        answer = answer.model_copy(update={"unit": unit})
        doc = await guarded(lambda uow: workflow.answer_rectification(uow, rect_id, answer))
        return RectificationOut.of(doc.to_doc())

    @router.post("/rectifications/{rect_id}/close", response_model=RectificationOut)
    async def close_rectification(
        rect_id: str, verdict: RectificationVerdict, caller: CallerDep
    ) -> RectificationOut:
        """The supervisor accepts the answer (closed) or sends it back with a new deadline."""
        caller.require(Permission.SUPERVISE)
        await reads.one(caller, storage.RECTIFICATIONS, rect_id, "rectification")
        doc = await guarded(lambda uow: workflow.close_rectification(uow, rect_id, verdict))
        return RectificationOut.of(doc.to_doc())

    # ------------------------------------------------------------------ reports

    async def report(
        caller: Caller,
        group_by: GroupBy,
        period_from: dt.date,
        period_to: dt.date,
        compare_from: dt.date | None,
        compare_to: dt.date | None,
    ) -> Report:
        if period_to < period_from:
            raise HTTPException(422, detail="period_to is before period_from")
        longest = workflow.settings.report_max_days
        if (period_to - period_from).days >= longest:
            raise HTTPException(422, detail=f"a report period is at most {longest} days")
        if (compare_from is None) != (compare_to is None):
            raise HTTPException(422, detail="give both compare_from and compare_to, or neither")
        if compare_from is not None and compare_to is not None:
            if compare_to < compare_from:
                raise HTTPException(422, detail="compare_to is before compare_from")
            compare = (compare_from, compare_to)
        else:
            try:
                compare = previous_period(period_from, period_to)
            except OverflowError as exc:
                raise HTTPException(422, detail="no comparison period before year 1") from exc
        low = min(period_from, compare[0]).isoformat()
        high = max(period_to, compare[1]).isoformat()
        caller.require(Permission.READ_CASES)
        rows = [
            ReviewRow.model_validate({**d, "self_reviewed": d.get("self_review") is not None})
            for d in await storage.scored_reviews(svc.db, low, high)
            if in_scope(caller.scope, d)  # a district's report holds its district only
        ]
        names = {d.code: d.name for d in city.districts}
        names.update({u.id: u.name for u in city.all_units()})
        rubric = workflow.rubric
        texts = {code: item.text for code, (_, item) in rubric.items.items()}
        for version in workflow.rubrics.values():
            for code, (_, item) in version.items.items():
                texts.setdefault(code, item.text)
        return build_report(
            rows,
            group_by=group_by,
            period=(period_from, period_to),
            compare=compare,
            grades=[g.grade for g in rubric.grades],
            item_texts=texts,
            names=names,
            top=workflow.settings.report_top_defects,
        )

    @router.get("/reports", response_model=Report)
    async def get_report(
        caller: CallerDep,
        period_from: dt.date,
        period_to: dt.date,
        group_by: GroupBy = "district",
        compare_from: dt.date | None = None,
        compare_to: dt.date | None = None,
    ) -> Report:
        """Grade distribution, common defects and the comparison period, per unit or district."""
        return await report(caller, group_by, period_from, period_to, compare_from, compare_to)

    @router.get("/reports.csv", response_class=Response)
    async def get_report_csv(
        caller: CallerDep,
        period_from: dt.date,
        period_to: dt.date,
        group_by: GroupBy = "district",
        compare_from: dt.date | None = None,
        compare_to: dt.date | None = None,
    ) -> Response:
        """The same report as CSV (UTF-8 with BOM, so spreadsheet tools read the Chinese)."""
        body = to_csv(
            await report(caller, group_by, period_from, period_to, compare_from, compare_to)
        )
        filename = f"casereview-{group_by}-{period_from}-{period_to}.csv"
        return Response(
            content="\ufeff" + body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router
