"""双随机抽查: a campaign draws case files at random from a published seed, assigns each to a
reviewer of another unit at random, and opens one review per sampled case."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import structlog

from services.casereview import storage
from services.casereview.domain.commands import CampaignSpec
from services.casereview.domain.records import Campaign, Review
from services.casereview.domain.rubric import propose
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
from services.casereview.handlers.case_log import emit, load_case, record
from services.casereview.reference import ReferenceData
from shared.api import Conflict
from shared.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


def campaign_id_of(spec: CampaignSpec, seed: str) -> str:
    """Same name, period and seed: the same campaign (a resent command draws nothing new)."""
    key = f"{spec.name}|{spec.period_from}|{spec.period_to}|{seed}"
    return "camp-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Campaigns:
    """双随机 draws from the reviewer directory, by the current rubric."""

    def __init__(self, reference: ReferenceData) -> None:
        self.reference = reference

    def reviewers_for(self, spec: CampaignSpec) -> list[Reviewer]:
        """The active reviewers the campaign names (all by default), in its districts."""
        pool = self.reference.directory.active()
        if spec.reviewer_ids:
            unknown = sorted(set(spec.reviewer_ids) - {reviewer.id for reviewer in pool})
            if unknown:
                raise Conflict(f"unknown or inactive reviewers: {', '.join(unknown)}")
            pool = [reviewer for reviewer in pool if reviewer.id in set(spec.reviewer_ids)]
        if spec.reviewer_districts:
            pool = [
                reviewer for reviewer in pool if reviewer.district in set(spec.reviewer_districts)
            ]
        if not pool:
            raise Conflict("no reviewers match the campaign")
        return pool

    async def population(self, uow: UnitOfWork, spec: CampaignSpec) -> list[Candidate]:
        """The case files the campaign draws from (bounded: a larger one must be narrowed)."""
        limit = self.reference.settings.max_population
        rows = await storage.population(
            uow,
            period_from=spec.period_from.isoformat(),
            period_to=spec.period_to.isoformat(),
            units=spec.units,
            districts=spec.districts,
            include_reviewed=spec.include_reviewed,
            limit=limit + 1,
        )
        if not rows:
            raise Conflict("no case files to draw from in that period and scope")
        if len(rows) > limit:
            raise Conflict(f"population over {limit} cases: narrow it")
        return [Candidate(case_id=row["_id"], unit=row["unit"]) for row in rows]

    async def create_campaign(self, uow: UnitOfWork, spec: CampaignSpec) -> Campaign:
        """Draw the sample, assign reviewers, open one review per sampled case."""
        seed = spec.seed or secrets.token_hex(8)
        campaign_id = campaign_id_of(spec, seed)
        if await storage.campaigns(uow).get(campaign_id):
            raise Conflict(f"campaign {campaign_id} exists (same name, period and seed)")
        reviewers = self.reviewers_for(spec)
        population = await self.population(uow, spec)
        quota = Quota(k_per_unit=spec.k_per_unit, percent=spec.percent)
        sample = draw_sample(population, seed, quota)
        try:
            assignments = assign_reviewers(sample, reviewers, seed)
        except NoEligibleReviewer as exc:
            raise Conflict(str(exc)) from exc
        now = uow.now()
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
            population=[(candidate.case_id, candidate.unit) for candidate in population],
            population_size=len(population),
            population_hash=population_hash(population),
            reviewers=reviewers,
            directory_version=self.reference.directory.version,
            rubric_version=self.reference.rubric.version,
            sample=[candidate.case_id for candidate in sample],
            assignments=assignments,
            created_at=now,
            status="drawn",
        )
        storage.campaigns(uow).add(campaign)
        by_id = {reviewer.id: reviewer for reviewer in reviewers}
        for drawn in sample:
            reviewer = by_id[assignments[drawn.case_id]]
            await self.open_review(uow, campaign, drawn.case_id, reviewer, now)
        log.info(
            "campaign drawn", campaign=campaign_id, population=len(population), sample=len(sample)
        )
        return campaign

    async def open_review(
        self,
        uow: UnitOfWork,
        campaign: Campaign,
        case_id: str,
        reviewer: Reviewer,
        now: dt.datetime,
    ) -> None:
        """One sampled case: its review, pre-filled from the pre-check, and its reviewer."""
        case = await load_case(uow, case_id)
        review_id = f"{campaign.id}:{case_id}"
        rubric = self.reference.rubric
        review = Review(
            id=review_id,
            campaign_id=campaign.id,
            case_id=case_id,
            unit=case.unit,
            district=case.district,
            closed_on=case.closed_on,
            reviewer_id=reviewer.id,
            reviewer_unit=reviewer.unit,
            status="assigned",
            rubric_version=rubric.version,
            proposals=propose(rubric, case.findings),
            self_review=case.self_review,
            assigned_at=now,
        )
        storage.reviews(uow).add(review)
        case.status = "sampled"
        case.campaign_id = campaign.id
        case.review_id = review_id
        case.reviewer_id = reviewer.id
        await record(
            uow,
            case,
            "sampled",
            {"at": now, "campaign_id": campaign.id, "seed": campaign.seed, "algorithm": ALGORITHM},
        )
        await emit(
            uow,
            case,
            "review_assigned",
            {
                "at": now,
                "campaign_id": campaign.id,
                "review_id": review_id,
                "reviewer_id": reviewer.id,
                "reviewer_unit": reviewer.unit,
            },
        )
