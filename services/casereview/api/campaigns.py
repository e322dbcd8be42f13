"""双随机 campaigns: the draw, its published input and its verification by a re-draw."""

from __future__ import annotations

from services.casereview import reads
from services.casereview.api.deps import CampaignsDep, guarded, may_draw
from services.casereview.domain.commands import CampaignSpec
from services.casereview.domain.records import Campaign, Verification
from services.casereview.schemas import CampaignOut, CampaignPopulation, CampaignSummary
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param
from shared.identity import CallerDep

router = audited_router(prefix="/v1/casereview", tags=["casereview"])


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
async def create_campaign(
    spec: CampaignSpec, svc: ServiceDep, campaigns: CampaignsDep, caller: CallerDep
) -> CampaignOut:
    """Draw a 双随机 sample and assign reviewers; the seed is published with the result.
    A district bureau draws only within its district (it names it in ``districts``)."""
    may_draw(caller, spec)
    campaign = await guarded(svc, lambda uow: campaigns.create_campaign(uow, spec))
    return CampaignOut.of(campaign.to_doc())


@router.get("/campaigns", response_model=Page[CampaignSummary])
async def list_campaigns(
    svc: ServiceDep, caller: CallerDep, limit: int = limit_param(), offset: int = offset_param()
) -> Page[CampaignSummary]:
    return await reads.CAMPAIGNS.page(svc, caller, {}, CampaignSummary, limit, offset)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(campaign_id: str, svc: ServiceDep, caller: CallerDep) -> CampaignOut:
    return CampaignOut.of(await reads.CAMPAIGNS.one(svc, caller, campaign_id))


@router.get("/campaigns/{campaign_id}/population", response_model=CampaignPopulation)
async def get_population(
    campaign_id: str, svc: ServiceDep, caller: CallerDep
) -> CampaignPopulation:
    """The published draw input: population, seed, quota, reviewers."""
    return CampaignPopulation.of(await reads.CAMPAIGNS.one(svc, caller, campaign_id))


@router.get("/campaigns/{campaign_id}/verify", response_model=Verification)
async def verify_campaign(campaign_id: str, svc: ServiceDep, caller: CallerDep) -> Verification:
    """Re-draw from the recorded input and compare with the recorded result."""
    return Campaign.from_doc(await reads.CAMPAIGNS.one(svc, caller, campaign_id)).verify()
