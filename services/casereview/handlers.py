"""Event, timer and command handlers of the casereview service: glue between events, the
domain rules and storage. Every change runs inside one unit of work (transaction), and every
timer, lead and notice id is derived from a business key, so a retry never doubles anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from decimal import Decimal
from typing import Annotated, Any

import structlog
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from pydantic_core import to_jsonable_python

from services.casereview import storage
from services.casereview.domain.directory import Directory, load_directory
from services.casereview.domain.precheck import (
    PrecheckPolicy,
    check_registered_certificates,
    run_prechecks,
)
from services.casereview.domain.records import (
    Answer,
    Campaign,
    Case,
    CaseStatus,
    IgnoredRevision,
    Issue,
    Rectification,
    Review,
    SelfReview,
    Verdict,
)
from services.casereview.domain.rubric import (
    Decision,
    Extra,
    RectificationKind,
    Rubric,
    ScoreSheet,
    current_rubric,
    load_rubrics,
    propose,
    rectification_kind,
    review_sheet,
)
from services.casereview.domain.sampling import (
    ALGORITHM,
    Candidate,
    NoEligibleReviewer,
    Quota,
    Reviewer,
    assign_reviewers,
    draw_sample,
    population_hash,
)
from services.casereview.settings import CasereviewSettings
from shared.api import Conflict, Forbidden, NotFound
from shared.city import supervising_unit
from shared.clock import utc
from shared.contracts import (
    CaseClosed,
    LeadKind,
    NoticeKind,
    NotificationRequest,
    SupervisionLead,
    parse_data,
)
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.topics import CASEREVIEW_EVENTS
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

log = structlog.get_logger(__name__)

EVENT_PREFIX = "jiandu.casereview.case."
CASE_CLOSED = "gov.enforcement.case.closed"
RECTIFICATION_DUE = "casereview.rectification_due"
RAISED_BY = "casereview"


def rectification_timer(rect_id: str) -> str:
    return f"casereview:rect-due:{rect_id}"


def end_of_day_after(when: dt.datetime, days: int) -> dt.datetime:
    """Close of the CST day ``days`` calendar days after ``when`` (rectification deadline)."""
    day = when.astimezone(CST).date() + dt.timedelta(days=days + 1)
    return dt.datetime.combine(day, dt.time(0), CST).astimezone(dt.UTC)


def file_hash(case: CaseClosed) -> str:
    body = json.dumps(case.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


SNAPSHOT_FIELDS = (
    "district",
    "unit",
    "status",
    "updated_at",
    "procedure",
    "matter",
    "closed_on",
    "decision",
    "finding_codes",
    "campaign_id",
    "review_id",
    "reviewer_id",
    "grade",
    "score",
    "rectification_id",
    "rectification_status",
    "rectification_deadline",
)


def snapshot(case: Case) -> dict[str, Any]:
    """The case as events carry it: the review state, not the file (no personal data)."""
    doc = case.to_doc()
    body = {k: doc.get(k) for k in SNAPSHOT_FIELDS}
    body["defects"] = len(case.findings)
    return {"id": case.id, **to_jsonable_python(body)}


# ---------------------------------------------------------------- command models


class CampaignSpec(BaseModel):
    """A sampling campaign (双随机抽查): period, units, quota and the seed to publish."""

    name: str = Field(min_length=1, max_length=200)
    period_from: dt.date
    period_to: dt.date
    units: list[str] = Field(default_factory=list, max_length=500)
    districts: list[str] = Field(default_factory=list, max_length=50)
    k_per_unit: int | None = Field(default=None, ge=1, le=1000)
    percent: Decimal | None = Field(default=None, gt=0, le=100)
    seed: str | None = Field(
        default=None, min_length=1, max_length=200, description="published; random if omitted"
    )
    reviewer_ids: list[str] = Field(default_factory=list, max_length=1000)
    reviewer_districts: list[str] = Field(default_factory=list, max_length=50)
    include_reviewed: bool = Field(
        default=False, description="also draw cases already sampled by another campaign"
    )

    @model_validator(mode="after")
    def _valid(self) -> CampaignSpec:
        if (self.k_per_unit is None) == (self.percent is None):
            raise ValueError("give exactly one of k_per_unit or percent")
        if self.period_to < self.period_from:
            raise ValueError("period_to is before period_from")
        return self


class ScoreSubmission(BaseModel):
    """The reviewer's decisions; the score and the grade are computed from them."""

    reviewer_id: str = Field(min_length=1, max_length=64)
    decisions: list[Decision] = Field(default_factory=list, max_length=200)
    extras: list[Extra] = Field(default_factory=list, max_length=100)
    comment: str = Field(default="", max_length=4000)


class SelfReviewSubmission(BaseModel):
    """书面自评报告 of one case file (seed 002, 案卷评查: 各行政执法机关…开展自查)."""

    unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="the token's unit if omitted"
    )
    conclusion: str = Field(min_length=1, max_length=8000)
    problems: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=100, description="problems found, one short text each"
    )
    score: float = Field(ge=0, le=100, description="the unit's own score")
    submitted_at: AwareDatetime


class RectificationAnswer(BaseModel):
    """整改报告: what the unit did."""

    unit: str = Field(min_length=1, max_length=100)
    measures: str = Field(min_length=1, max_length=8000)
    documents: list[str] = Field(default_factory=list, max_length=50)


class RectificationVerdict(BaseModel):
    """The supervisor accepts the rectification (closed) or sends it back (new deadline)."""

    by: str = Field(min_length=1, max_length=100)
    accepted: bool
    comment: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _reason(self) -> RectificationVerdict:
        if not self.accepted and not self.comment.strip():
            raise ValueError("sending a rectification back needs a comment")
        return self


# ---------------------------------------------------------------- the workflow


class CaseReviewWorkflow:
    """案卷评查 for one service instance (stateless between calls)."""

    def __init__(self, settings: CasereviewSettings) -> None:
        self.settings = settings
        self.policy = PrecheckPolicy(
            decision_limit_days=settings.decision_limit_days,
            service_limit_days=settings.service_limit_days,
            min_officers=settings.min_officers,
            large_fine_thresholds=dict(settings.large_fine_thresholds),
            hearing_decision_kinds=frozenset(settings.hearing_decision_kinds),
        )
        self.rubrics: dict[str, Rubric] = load_rubrics(settings.rubric_dir)
        self.rubric: Rubric = current_rubric(self.rubrics, settings.rubric_version)
        self.directory: Directory = load_directory(settings.reviewers_path)

    # ------------------------------------------------------------------ plumbing

    async def _emit(self, uow: UnitOfWork, case: Case, verb: str, change: dict[str, Any]) -> None:
        await uow.emit_change(
            CASEREVIEW_EVENTS,
            EVENT_PREFIX + verb,
            "case",
            case.id,
            case.district,
            snapshot(case),
            change,
        )

    async def _save_case(self, uow: UnitOfWork, case: Case) -> None:
        case.updated_at = uow.now()
        storage.cases(uow).put(case)

    async def _case(self, uow: UnitOfWork, case_id: str) -> Case:
        case = await storage.cases(uow).get(case_id)
        if case is None:
            raise NotFound(f"case {case_id} not found")
        return case

    # ------------------------------------------------------------------ intake

    async def on_case_closed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Store the file, pre-check it; a resent identical file changes nothing."""
        file = parse_data(event, CaseClosed)
        digest = file_hash(file)
        registry = await storage.registry_of(uow, sorted({o.id for o in file.officers}))
        findings = check_registered_certificates(file, run_prechecks(file, self.policy), registry)
        existing = await storage.cases(uow).get(file.case_id)
        now = uow.now()
        if existing is not None:
            if existing.file_hash == digest:
                log.info("case file resent unchanged", case_id=file.case_id, event_id=event.id)
                return
            if existing.status != "registered":
                # Under review already: the reviewed version stays; the resend is noted.
                existing.ignored_revisions.append(
                    IgnoredRevision(event_id=event.id, file_hash=digest, at=now)
                )
                await self._save_case(uow, existing)
                log.warning("revised case file after sampling ignored", case_id=file.case_id)
                return
        closed_on = file.dates.closed or event.time.astimezone(CST).date()
        case = Case(
            id=file.case_id,
            district=file.district,
            unit=file.unit,
            procedure=file.procedure,
            matter=file.matter,
            closed_on=closed_on.isoformat(),
            decision=file.decision.model_dump(mode="json"),
            file=file.model_dump(mode="json"),
            file_hash=digest,
            findings=findings,
            finding_codes=sorted({f.code for f in findings}),
            status="registered",
            received_at=existing.received_at if existing else now,
            event_id=event.id,
            revision=(existing.revision if existing else 0) + 1,
        )
        await self._save_case(uow, case)
        await self._emit(
            uow, case, "registered", {"at": now, "event_id": event.id, "revision": case.revision}
        )
        if findings:
            await self._emit(
                uow,
                case,
                "defects_found",
                {
                    "at": now,
                    "findings": [
                        {"code": f.code, "severity": f.severity, "message": f.message}
                        for f in findings
                    ],
                },
            )

    # ------------------------------------------------------------------ self-review (自查)

    async def submit_self_review(
        self, uow: UnitOfWork, case_id: str, unit: str, submission: SelfReviewSubmission
    ) -> Case:
        """The unit's 书面自评报告: kept on the case (and its assigned review, for the
        reviewer); replaced by a resubmission until the review starts, then 409. The event
        ``self_reviewed`` is emitted once per case, on the first submission."""
        case = await self._case(uow, case_id)
        if unit != case.unit:
            raise Forbidden(f"case {case_id} belongs to {case.unit}")
        if not case.self_review_open:
            raise Conflict(f"case {case_id} is {case.status}: its review has started")
        now = uow.now()
        report = SelfReview(
            unit=unit,
            conclusion=submission.conclusion,
            problems=submission.problems,
            score=submission.score,
            submitted_at=submission.submitted_at,
            received_at=now,
        )
        first = case.record_self_review(report)
        await self._save_case(uow, case)
        if case.review_id is not None:
            review = await storage.reviews(uow).get(case.review_id)
            if review is not None:
                review.self_review = case.self_review
                storage.reviews(uow).put(review)
        if first:
            await self._emit(
                uow,
                case,
                "self_reviewed",
                {
                    "at": now,
                    "by": unit,
                    "score": report.score,
                    "problems": len(report.problems),
                    "submitted_at": report.submitted_at,
                },
            )
        return case

    # ------------------------------------------------------------------ officer registry

    async def on_officer_changed(self, event: Envelope, uow: UnitOfWork) -> None:
        """The inspection service's registry entry for one officer: keep the latest copy."""
        entry = event.data.get("officer")
        if not isinstance(entry, dict) or not entry.get("id"):
            raise EventRejected(f"{event.type} without an officer entry")
        doc = {k: v for k, v in entry.items() if k != "id"}
        storage.put_officer(uow, {"_id": str(entry["id"]), **doc, "event_id": event.id})

    # ------------------------------------------------------------------ campaigns

    def reviewers_for(self, spec: CampaignSpec) -> list[Reviewer]:
        pool = self.directory.active()
        if spec.reviewer_ids:
            unknown = sorted(set(spec.reviewer_ids) - {r.id for r in pool})
            if unknown:
                raise Conflict(f"unknown or inactive reviewers: {', '.join(unknown)}")
            pool = [r for r in pool if r.id in set(spec.reviewer_ids)]
        if spec.reviewer_districts:
            pool = [r for r in pool if r.district in set(spec.reviewer_districts)]
        if not pool:
            raise Conflict("no reviewers match the campaign")
        return pool

    async def create_campaign(self, uow: UnitOfWork, spec: CampaignSpec) -> Campaign:
        """Draw the sample, assign reviewers, open one review per sampled case."""
        seed = spec.seed or secrets.token_hex(8)
        campaign_id = (
            "camp-"
            + hashlib.sha256(
                f"{spec.name}|{spec.period_from}|{spec.period_to}|{seed}".encode()
            ).hexdigest()[:12]
        )
        if await storage.campaigns(uow).get(campaign_id):
            raise Conflict(f"campaign {campaign_id} exists (same name, period and seed)")
        reviewers = self.reviewers_for(spec)
        rows = await storage.population(
            uow,
            period_from=spec.period_from.isoformat(),
            period_to=spec.period_to.isoformat(),
            units=spec.units,
            districts=spec.districts,
            include_reviewed=spec.include_reviewed,
            limit=self.settings.max_population + 1,
        )
        if not rows:
            raise Conflict("no case files to draw from in that period and scope")
        if len(rows) > self.settings.max_population:
            raise Conflict(f"population over {self.settings.max_population} cases: narrow it")
        population = [Candidate(case_id=r["_id"], unit=r["unit"]) for r in rows]
        quota = Quota(k_per_unit=spec.k_per_unit, percent=spec.percent)
        sample = draw_sample(population, seed, quota)
        try:
            assignments = assign_reviewers(sample, reviewers, seed)
        except NoEligibleReviewer as exc:
            raise Conflict(str(exc)) from exc
        now = uow.now()
        by_id = {r.id: r for r in reviewers}
        campaign = Campaign(
            id=campaign_id,
            name=spec.name,
            period_from=spec.period_from.isoformat(),
            period_to=spec.period_to.isoformat(),
            units=spec.units,
            districts=spec.districts,
            k_per_unit=spec.k_per_unit,
            percent=str(spec.percent) if spec.percent is not None else None,
            seed=seed,
            algorithm=ALGORITHM,
            population=[(c.case_id, c.unit) for c in population],
            population_size=len(population),
            population_hash=population_hash(population),
            reviewers=reviewers,
            directory_version=self.directory.version,
            rubric_version=self.rubric.version,
            sample=[c.case_id for c in sample],
            assignments=assignments,
            created_at=now,
            status="drawn",
        )
        storage.campaigns(uow).add(campaign)
        for c in sample:
            case = await self._case(uow, c.case_id)
            reviewer = by_id[assignments[c.case_id]]
            review_id = f"{campaign_id}:{c.case_id}"
            review = Review(
                id=review_id,
                campaign_id=campaign_id,
                case_id=c.case_id,
                unit=case.unit,
                district=case.district,
                closed_on=case.closed_on,
                reviewer_id=reviewer.id,
                reviewer_unit=reviewer.unit,
                status="assigned",
                rubric_version=self.rubric.version,
                proposals=propose(self.rubric, case.findings),
                self_review=case.self_review,
                assigned_at=now,
            )
            storage.reviews(uow).add(review)
            case.status = "sampled"
            case.campaign_id = campaign_id
            case.review_id = review_id
            case.reviewer_id = reviewer.id
            await self._save_case(uow, case)
            await self._emit(
                uow,
                case,
                "sampled",
                {"at": now, "campaign_id": campaign_id, "seed": seed, "algorithm": ALGORITHM},
            )
            await self._emit(
                uow,
                case,
                "review_assigned",
                {
                    "at": now,
                    "campaign_id": campaign_id,
                    "review_id": review_id,
                    "reviewer_id": reviewer.id,
                    "reviewer_unit": reviewer.unit,
                },
            )
        log.info("campaign drawn", campaign=campaign_id, population=len(rows), sample=len(sample))
        return campaign

    @staticmethod
    def verify_campaign(campaign: Campaign) -> dict[str, Any]:
        """Re-draw from the stored population, reviewers and seed; compare with the record."""
        population = [Candidate(case_id=c, unit=u) for c, u in campaign.population]
        quota = Quota(
            k_per_unit=campaign.k_per_unit,
            percent=Decimal(campaign.percent) if campaign.percent else None,
        )
        sample = draw_sample(population, campaign.seed, quota)
        assignments = assign_reviewers(sample, campaign.reviewers, campaign.seed)
        sample_ids = [c.case_id for c in sample]
        return {
            "campaign_id": campaign.id,
            "algorithm": campaign.algorithm,
            "seed": campaign.seed,
            "population_hash": population_hash(population),
            "population_hash_matches": population_hash(population) == campaign.population_hash,
            "sample_matches": sample_ids == campaign.sample,
            "assignments_match": assignments == campaign.assignments,
            "sample": sample_ids,
            "assignments": assignments,
        }

    # ------------------------------------------------------------------ scoring

    def rubric_of(self, review: Review) -> Rubric:
        return self.rubrics.get(review.rubric_version, self.rubric)

    def preview(self, review: Review, submission: ScoreSubmission) -> ScoreSheet:
        return review_sheet(
            self.rubric_of(review), review.proposals, submission.decisions, submission.extras
        )

    async def score_review(
        self, uow: UnitOfWork, review_id: str, submission: ScoreSubmission
    ) -> Review:
        """Compute the sheet; 不合格 opens the rectification (notice, lead, durable timer)."""
        review = await storage.reviews(uow).get(review_id)
        if review is None:
            raise NotFound(f"review {review_id} not found")
        if review.status == "scored":
            raise Conflict(f"review {review_id} is already scored ({review.grade})")
        if submission.reviewer_id != review.reviewer_id:
            raise Forbidden(f"review {review_id} is assigned to {review.reviewer_id}")
        rubric = self.rubric_of(review)
        sheet = self.preview(review, submission)  # ReviewError → 422
        now = uow.now()
        kind = rectification_kind(rubric, sheet)
        review.status = "scored"
        review.sheet = sheet
        review.grade = sheet.grade
        review.score = sheet.total
        review.failed = rubric.needs_rectification(sheet.grade)
        review.defects = sorted({line.item for line in sheet.lines})
        review.comment = submission.comment
        review.scored_at = now
        review.scored_by = submission.reviewer_id
        storage.reviews(uow).put(review)
        case = await self._case(uow, review.case_id)
        case.status = "scored"
        case.grade = sheet.grade
        case.score = sheet.total
        await self._save_case(uow, case)
        await self._emit(
            uow,
            case,
            "scored",
            {
                "at": now,
                "by": submission.reviewer_id,
                "review_id": review_id,
                "grade": sheet.grade,
                "score": sheet.total,
                "vetoes": sheet.vetoes,
                "rubric_version": sheet.rubric_version,
            },
        )
        if kind is not None:
            await self._require_rectification(uow, case, review, sheet, kind)
        return review

    async def _require_rectification(
        self,
        uow: UnitOfWork,
        case: Case,
        review: Review,
        sheet: ScoreSheet,
        kind: RectificationKind,
    ) -> None:
        """整改: every file with deductions; a failing one is also escalated (REVIEW_FAILED)."""
        rect_id = f"rect:{review.id}"
        if await storage.rectifications(uow).get(rect_id):
            return  # one order per review, whatever happens
        now = uow.now()
        deadline = end_of_day_after(now, self.settings.rectification_days)
        rect = Rectification(
            id=rect_id,
            case_id=case.id,
            review_id=review.id,
            campaign_id=review.campaign_id,
            unit=case.unit,
            district=case.district,
            kind=kind,
            grade=sheet.grade,
            score=sheet.total,
            vetoes=sheet.vetoes,
            issues=[
                Issue(item=line.item, text=line.text, points=line.points, comment=line.comment)
                for line in sheet.lines
            ],
            status="open",
            round=1,
            required_at=now,
            deadline=deadline,
            overdue=False,
        )
        storage.rectifications(uow).add(rect)
        await self._order_notice(uow, rect)
        if kind == "failed":
            lead_id = SupervisionLead.make_id(LeadKind.REVIEW_FAILED, case.id, review.id)
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=lead_id,
                    kind=LeadKind.REVIEW_FAILED,
                    district=case.district,
                    unit=case.unit,
                    subject_type="case",
                    subject_id=case.id,
                    summary=f"案卷{case.id}评查{sheet.grade}（{sheet.total}分）",
                    evidence={
                        "review_id": review.id,
                        "vetoes": sheet.vetoes,
                        "defects": [i.item for i in rect.issues],
                        "rubric_version": sheet.rubric_version,
                    },
                    raised_at=now,
                    raised_by=RAISED_BY,
                )
            )
        await uow.schedule(
            rectification_timer(rect_id),
            RECTIFICATION_DUE,
            deadline,
            {"rectification_id": rect_id, "round": 1},
            subject=f"rectification/{rect_id}",
        )
        case.status = "rectification_required"
        case.rectification_id = rect_id
        case.rectification_status = "open"
        case.rectification_deadline = deadline
        await self._save_case(uow, case)
        await self._emit(
            uow,
            case,
            "rectification_required",
            {
                "at": now,
                "rectification_id": rect_id,
                "kind": kind,
                "deadline": deadline,
                "round": 1,
            },
        )

    async def _order_notice(self, uow: UnitOfWork, rect: Rectification) -> None:
        """整改通知书 to the unit; the key carries the round so a re-issue is a new notice."""
        deadline = utc(rect.deadline)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"casereview:rectification:{rect.id}:{rect.round}",
                kind=NoticeKind.RECTIFICATION,
                recipient_unit=rect.unit,
                district=rect.district,
                subject_type="rectification",
                subject_id=rect.id,
                summary=(
                    f"案卷{rect.case_id}经评查为{rect.grade}（{rect.score}分），"
                    f"请对评查反馈的{len(rect.issues)}项问题逐项整改，"
                    f"于{deadline.astimezone(CST):%Y年%m月%d日}前提交书面整改报告"
                ),
                deadline=deadline,
                context={
                    "case_id": rect.case_id,
                    "review_id": rect.review_id,
                    "kind": rect.kind,
                    "round": rect.round,
                    "vetoes": rect.vetoes,
                    "issues": [i.model_dump() for i in rect.issues],
                },
                requested_by=RAISED_BY,
            )
        )

    # ------------------------------------------------------------------ rectification

    async def _rect(self, uow: UnitOfWork, rect_id: str) -> Rectification:
        rect = await storage.rectifications(uow).get(rect_id)
        if rect is None:
            raise NotFound(f"rectification {rect_id} not found")
        return rect

    async def _sync_case(
        self,
        uow: UnitOfWork,
        rect: Rectification,
        status: CaseStatus,
        verb: str,
        change: dict[str, Any],
    ) -> None:
        case = await self._case(uow, rect.case_id)
        case.status = status
        case.rectification_status = rect.status
        case.rectification_deadline = rect.deadline
        await self._save_case(uow, case)
        await self._emit(uow, case, verb, {"rectification_id": rect.id, **change})

    async def answer_rectification(
        self, uow: UnitOfWork, rect_id: str, answer: RectificationAnswer
    ) -> Rectification:
        """The unit reports its rectification; the deadline timer is cancelled."""
        rect = await self._rect(uow, rect_id)
        if answer.unit != rect.unit:
            raise Forbidden(f"rectification {rect_id} is addressed to {rect.unit}")
        if rect.status not in ("open", "overdue"):
            raise Conflict(f"rectification {rect_id} is {rect.status}, not awaiting an answer")
        now = uow.now()
        late = now > utc(rect.deadline)
        rect.answers.append(Answer(**answer.model_dump(), at=now, round=rect.round, late=late))
        rect.status = "answered"
        rect.answered_at = now
        storage.rectifications(uow).put(rect)
        await uow.cancel(rectification_timer(rect_id))
        await self._sync_case(
            uow,
            rect,
            "rectification_answered",
            "rectification_answered",
            {"at": now, "by": answer.unit, "late": late, "round": rect.round},
        )
        return rect

    async def close_rectification(
        self, uow: UnitOfWork, rect_id: str, verdict: RectificationVerdict
    ) -> Rectification:
        """Accept (closed) or send back with a new deadline and a new notice."""
        rect = await self._rect(uow, rect_id)
        if rect.status != "answered":
            raise Conflict(f"rectification {rect_id} is {rect.status}: nothing to judge")
        now = uow.now()
        rect.verdicts.append(Verdict(**verdict.model_dump(), at=now, round=rect.round))
        if verdict.accepted:
            rect.status = "closed"
            rect.closed_at = now
            storage.rectifications(uow).put(rect)
            await self._sync_case(
                uow,
                rect,
                "rectification_closed",
                "rectification_closed",
                {"at": now, "by": verdict.by, "comment": verdict.comment},
            )
            return rect
        deadline = end_of_day_after(now, self.settings.rectification_days)
        rect.status = "open"
        rect.round += 1
        rect.deadline = deadline
        storage.rectifications(uow).put(rect)
        await self._order_notice(uow, rect)
        await uow.schedule(
            rectification_timer(rect_id),
            RECTIFICATION_DUE,
            deadline,
            {"rectification_id": rect_id, "round": rect.round},
            subject=f"rectification/{rect_id}",
        )
        await self._sync_case(
            uow,
            rect,
            "rectification_required",
            "rectification_required",
            {
                "at": now,
                "by": verdict.by,
                "reason": verdict.comment,
                "deadline": deadline,
                "round": rect.round,
            },
        )
        return rect

    async def on_rectification_due(self, timer: Document, uow: UnitOfWork) -> None:
        """Deadline passed without an answer: 通报 to the supervising bureau, once per round."""
        payload = timer.get("payload") or {}
        rect = await storage.rectifications(uow).get(str(payload.get("rectification_id")))
        if rect is None or rect.status != "open" or payload.get("round") != rect.round:
            return
        now = uow.now()
        rect.status = "overdue"
        rect.overdue = True
        rect.overdue_at = now
        storage.rectifications(uow).put(rect)
        supervisor = supervising_unit(rect.unit)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"casereview:escalation:{rect.id}:{rect.round}",
                kind=NoticeKind.ESCALATION,
                recipient_unit=supervisor,
                district=rect.district,
                subject_type="rectification",
                subject_id=rect.id,
                summary=f"{rect.unit}未在期限内完成案卷{rect.case_id}的整改，予以通报",
                deadline=None,
                context={
                    "case_id": rect.case_id,
                    "unit": rect.unit,
                    "deadline": utc(rect.deadline).isoformat(),
                    "round": rect.round,
                },
                requested_by=RAISED_BY,
            )
        )
        await uow.raise_lead(
            SupervisionLead(
                lead_id=SupervisionLead.make_id(LeadKind.OVERDUE, rect.id, str(rect.round)),
                kind=LeadKind.OVERDUE,
                district=rect.district,
                unit=rect.unit,
                subject_type="rectification",
                subject_id=rect.id,
                summary=f"案卷{rect.case_id}整改逾期",
                evidence={"deadline": utc(rect.deadline).isoformat(), "round": rect.round},
                raised_at=now,
                raised_by=RAISED_BY,
            )
        )
        await self._sync_case(
            uow,
            rect,
            "rectification_overdue",
            "rectification_overdue",
            {"at": now, "deadline": rect.deadline, "escalated_to": supervisor},
        )
