"""HTTP API of the penalty service under ``/v1/penalty``: filings (and filing them),
flags, fine anomalies, letters (and the unit's replies), the catalogue.

Every route needs a bearer token (``shared.identity``): lists and reads are limited to the
caller's district or unit (another district's object answers 404); a unit files and replies
only as the unit in its token (a body naming another unit → 403); classification and review
are the supervising bureaus'. Lists are paginated (``limit``, ``offset``) and filterable; bad
input answers 4xx with the reason, never 500.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from services.penalty import storage
from services.penalty.domain.catalogue import Catalogue, Provision
from services.penalty.domain.filing import DisproportionFinding, ReviewOutcome
from services.penalty.domain.records import Filing
from services.penalty.handlers import PenaltyWorkflow
from shared.api import (
    Out,
    Page,
    ScopedReads,
    audited_router,
    limit_param,
    offset_param,
    run_command,
)
from shared.clock import Instant, utc
from shared.contracts import CaseDocument
from shared.identity import CallerDep, Permission, acting_unit, require_in_scope
from shared.mongo import get_document
from shared.service import Service
from shared.unit_of_work import UnitOfWork

T = TypeVar("T")


class FilingOut(Out):
    id: str = Field(description="case_id")
    district: str
    unit: str
    status: str
    updated_at: dt.datetime | None = None
    decided: bool = False
    provision: str | None = None
    provision_id: str | None = None
    domain: str | None = None
    party_type: str | None = None
    fine: float | None = None
    decided_at: dt.datetime | None = None
    month: str | None = None
    circumstances: list[str] = Field(default_factory=list)
    catalogue_version: str | None = None
    classification: str | None = None
    classification_reason: str | None = None
    top_tier: bool | None = None
    range_min: float | None = None
    range_max: float | None = None
    band: str | None = None
    band_label: str | None = None
    above_range: bool = False
    large: bool = False
    priority_review: bool = False
    deadline_last_day: str | None = Field(default=None, description="last on-time day (CST)")
    deadline_due: dt.datetime | None = None
    filed: bool = False
    filed_at: dt.datetime | None = None
    filed_via: str | None = None
    documents: list[CaseDocument] = Field(default_factory=list)
    late: bool | None = None
    days_late: int | None = None
    missing: bool = False
    disproportion: DisproportionFinding | None = None
    review_status: str | None = None
    letters: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class FlagOut(Out):
    id: str
    kind: str
    case_id: str
    district: str
    unit: str
    reasons: list[str]
    evidence: dict[str, Any]
    lead_id: str | None
    raised_at: dt.datetime


class RuleOut(BaseModel):
    rule: str
    applicable: bool
    triggered: bool
    baseline: float | None
    value: float | None
    threshold: float
    explanation: str


class AnomalyOut(Out):
    id: str = Field(description="<unit>:<month>")
    unit: str
    unit_kind: str
    district: str
    month: str
    total: float
    count: int
    anomalous: bool
    ever_anomalous: bool
    rules: list[RuleOut]
    explanation: str
    lead_id: str | None
    detected_at: dt.datetime | None
    updated_at: dt.datetime


class ReplyOut(BaseModel):
    by: str
    content: str
    at: dt.datetime
    late: bool


class LetterOut(Out):
    id: str
    case_id: str
    district: str
    unit: str
    kind: Literal["acceptance", "recommendation", "decision"]
    title: str
    issued_by: str
    issued_at: dt.datetime
    opinion: str
    reply_due: dt.datetime | None
    status: str
    reply: ReplyOut | None
    escalated_at: dt.datetime | None = None


class ReviewResult(BaseModel):
    filing: FilingOut
    letter: LetterOut


class CataloguePage(BaseModel):
    version: str
    effective_from: str
    total: int
    limit: int
    offset: int
    items: list[Provision]


class FilingIn(BaseModel):
    """A unit files its top-tier penalty (顶格处罚备案) with the filing documents."""

    case_id: str = Field(min_length=1, max_length=64)
    unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="must be the token's (default)"
    )
    documents: list[CaseDocument] = Field(min_length=1, max_length=100)
    filed_at: Instant | None = Field(default=None, description="default: now")
    district: str | None = Field(default=None, pattern=r"^\d{6}$")


class ClassificationIn(BaseModel):
    top_tier: bool
    by: str = Field(min_length=1, max_length=100)
    note: str = Field(min_length=1, max_length=2000)


class ReviewIn(BaseModel):
    outcome: ReviewOutcome
    by: str = Field(min_length=1, max_length=100, description="the reviewing bureau/officer")
    opinion: str = Field(min_length=1, max_length=4000)


class ReplyIn(BaseModel):
    by: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the unit answering: the token's (default); another unit is refused",
    )
    content: str = Field(min_length=1, max_length=8000)


def _filters(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def build_router(svc: Service, workflow: PenaltyWorkflow, catalogue: Catalogue) -> APIRouter:
    router = audited_router(prefix="/v1/penalty", tags=["penalty"])
    Limit, Offset = limit_param(), offset_param()
    reads = ScopedReads(svc, Permission.READ_FILINGS)

    # ------------------------------------------------------------------ filings

    @router.get("/filings", response_model=Page[FilingOut])
    async def list_filings(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        status: str | None = None,
        top_tier: bool | None = None,
        large: bool | None = None,
        late: bool | None = None,
        missing: bool | None = None,
        flag: str | None = Query(None, description="e.g. disproportion, late_filing"),
        month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[FilingOut]:
        """Decided penalties and their filings, newest decision first."""
        query = _filters(
            district=district,
            unit=unit,
            status=status,
            top_tier=top_tier,
            large=large,
            late=late,
            missing=missing,
            flags=flag,
            month=month,
        )
        total, docs = await reads.page(
            caller, storage.FILINGS, query, storage.FILINGS_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[FilingOut.of(d) for d in docs])

    @router.get("/filings/{case_id}", response_model=FilingOut)
    async def one_filing(case_id: str, caller: CallerDep) -> FilingOut:
        return FilingOut.of(await reads.one(caller, storage.FILINGS, case_id, "penalty or filing"))

    @router.post("/filings", response_model=FilingOut, status_code=201)
    async def file_penalty(body: FilingIn, caller: CallerDep) -> FilingOut:
        """备案: the unit files a top-tier penalty with its documents (late ones are flagged)."""
        unit = acting_unit(caller, body.unit)
        known = await get_document(svc.db, storage.FILINGS, body.case_id)
        if known is not None:
            require_in_scope(caller, known, f"penalty or filing {body.case_id}")
        now = svc.clock.now()
        filed_at = utc(body.filed_at) if body.filed_at else now
        if filed_at > now + dt.timedelta(minutes=5):
            raise HTTPException(422, detail="filed_at is in the future")

        async def work(uow: UnitOfWork) -> Filing:
            return await workflow.record_filing(
                uow,
                case_id=body.case_id,
                unit=unit,
                district=body.district,
                filed_at=filed_at,
                documents=body.documents,
                via="api",
            )

        return FilingOut.of((await run_command(svc, work)).to_doc())

    @router.post("/filings/{case_id}/classification", response_model=FilingOut)
    async def classify(case_id: str, body: ClassificationIn, caller: CallerDep) -> FilingOut:
        """Manual classification of a penalty whose provision is not in the catalogue."""
        caller.require(Permission.SUPERVISE)
        await reads.one(caller, storage.FILINGS, case_id, "penalty or filing")
        filing = await run_command(
            svc, lambda uow: workflow.classify(uow, case_id, body.top_tier, body.by, body.note)
        )
        return FilingOut.of(filing.to_doc())

    @router.post("/filings/{case_id}/review", response_model=ReviewResult, status_code=201)
    async def review(case_id: str, body: ReviewIn, caller: CallerDep) -> ReviewResult:
        """The bureau's answer: accept, 监督建议书 (reply due) or 监督决定书."""
        caller.require(Permission.SUPERVISE)
        await reads.one(caller, storage.FILINGS, case_id, "penalty or filing")
        filing, letter = await run_command(
            svc, lambda uow: workflow.review(uow, case_id, body.outcome, body.by, body.opinion)
        )
        return ReviewResult(
            filing=FilingOut.of(filing.to_doc()), letter=LetterOut.of(letter.to_doc())
        )

    # ------------------------------------------------------------------ flags, anomalies

    @router.get("/flags", response_model=Page[FlagOut])
    async def list_flags(
        caller: CallerDep,
        kind: Literal[
            "classification_needed",
            "large_top_tier",
            "late_filing",
            "missing_filing",
            "disproportion",
        ]
        | None = None,
        district: str | None = None,
        unit: str | None = None,
        case_id: str | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[FlagOut]:
        query = _filters(kind=kind, district=district, unit=unit, case_id=case_id)
        total, docs = await reads.page(
            caller, storage.FLAGS, query, storage.FLAGS_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[FlagOut.of(d) for d in docs])

    @router.get("/anomalies", response_model=Page[AnomalyOut])
    async def list_anomalies(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        unit_kind: str | None = None,
        month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
        anomalous: bool | None = Query(None, description="current judgement of the month"),
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[AnomalyOut]:
        """Unit-months with their totals and the explained comparisons."""
        query = _filters(
            district=district, unit=unit, unit_kind=unit_kind, month=month, anomalous=anomalous
        )
        total, docs = await reads.page(
            caller, storage.ANOMALIES, query, storage.ANOMALIES_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[AnomalyOut.of(d) for d in docs])

    # ------------------------------------------------------------------ letters

    @router.get("/letters", response_model=Page[LetterOut])
    async def list_letters(
        caller: CallerDep,
        district: str | None = None,
        unit: str | None = None,
        case_id: str | None = None,
        kind: Literal["acceptance", "recommendation", "decision"] | None = None,
        status: Literal["issued", "awaiting_reply", "replied", "escalated"] | None = None,
        limit: int = Limit,
        offset: int = Offset,
    ) -> Page[LetterOut]:
        query = _filters(district=district, unit=unit, case_id=case_id, kind=kind, status=status)
        total, docs = await reads.page(
            caller, storage.LETTERS, query, storage.LETTERS_ORDER, limit, offset
        )
        return Page(total=total, limit=limit, offset=offset, items=[LetterOut.of(d) for d in docs])

    @router.get("/letters/{letter_id}", response_model=LetterOut)
    async def one_letter(letter_id: str, caller: CallerDep) -> LetterOut:
        return LetterOut.of(await reads.one(caller, storage.LETTERS, letter_id, "letter"))

    @router.post("/letters/{letter_id}/reply", response_model=LetterOut)
    async def reply(letter_id: str, body: ReplyIn, caller: CallerDep) -> LetterOut:
        """The unit's reply to a 监督建议书 / 监督决定书, as the token's unit."""
        unit = acting_unit(caller, body.by)
        await reads.one(caller, storage.LETTERS, letter_id, "letter")
        _, letter = await run_command(
            svc, lambda uow: workflow.record_reply(uow, letter_id, unit, body.content)
        )
        return LetterOut.of(letter.to_doc())

    # ------------------------------------------------------------------ catalogue

    @router.get("/catalogue", response_model=CataloguePage)
    async def list_catalogue(
        domain: str | None = None,
        party_type: Literal["individual", "business", "other"] | None = None,
        q: str | None = Query(None, max_length=100, description="text in provision or matter"),
        limit: int = Limit,
        offset: int = Offset,
    ) -> CataloguePage:
        """The versioned catalogue the top-tier judgement uses."""
        items = [
            p
            for p in catalogue.provisions
            if (domain is None or p.domain == domain)
            and (party_type is None or party_type in p.party_types)
            and (q is None or q in p.provision or q in p.matter)
        ]
        return CataloguePage(
            version=catalogue.version,
            effective_from=catalogue.effective_from,
            total=len(items),
            limit=limit,
            offset=offset,
            items=items[offset : offset + limit],
        )

    @router.get("/catalogue/{provision_id}", response_model=Provision)
    async def one_provision(provision_id: str) -> Provision:
        found = catalogue.lookup(provision_id)
        if found is None:
            raise HTTPException(404, detail=f"no provision {provision_id!r} in the catalogue")
        return found

    return router
