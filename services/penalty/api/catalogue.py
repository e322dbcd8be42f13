"""``/v1/penalty/catalogue``: the versioned catalogue (处罚裁量目录) the top-tier judgement
uses, searchable, and one provision with its ranges and bands."""

from __future__ import annotations

from typing import Literal

from fastapi import HTTPException, Query

from services.penalty.api.deps import CatalogueDep
from services.penalty.domain.catalogue import Provision
from services.penalty.schemas import CataloguePage
from shared.api import audited_router, limit_param, offset_param

router = audited_router(prefix="/v1/penalty", tags=["penalty"])


@router.get("/catalogue", response_model=CataloguePage)
async def list_catalogue(
    catalogue: CatalogueDep,
    domain: str | None = None,
    party_type: Literal["individual", "business", "other"] | None = None,
    q: str | None = Query(None, max_length=100, description="text in provision or matter"),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> CataloguePage:
    """The versioned catalogue the top-tier judgement uses."""
    items = catalogue.search(domain, party_type, q)
    return CataloguePage(
        version=catalogue.version,
        effective_from=catalogue.effective_from,
        total=len(items),
        limit=limit,
        offset=offset,
        items=items[offset : offset + limit],
    )


@router.get("/catalogue/{provision_id}", response_model=Provision)
async def one_provision(provision_id: str, catalogue: CatalogueDep) -> Provision:
    found = catalogue.lookup(provision_id)
    if found is None:
        raise HTTPException(404, detail=f"no provision {provision_id!r} in the catalogue")
    return found
