"""The penalty read side for the API: filings, flags, fine anomalies and letters within the
caller's scope (``READ_FILINGS``; another district's or unit's answers 404, like a missing one).
Routes are in ``api``, the read models in ``schemas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from services.penalty import storage
from shared.api import Out, Page, ScopedReads
from shared.identity import Caller, Permission, require_in_scope
from shared.mongo import Document, SortOrder, get_document
from shared.service import Service

M = TypeVar("M", bound=Out)


@dataclass(frozen=True)
class Listing:
    """One collection as the API lists it: its order, and what one document is (for a 404)."""

    collection: str
    what: str
    order: SortOrder


FILINGS = Listing(storage.FILINGS, "penalty or filing", storage.FILINGS_ORDER)
FLAGS = Listing(storage.FLAGS, "flag", storage.FLAGS_ORDER)
ANOMALIES = Listing(storage.ANOMALIES, "anomaly", storage.ANOMALIES_ORDER)
LETTERS = Listing(storage.LETTERS, "letter", storage.LETTERS_ORDER)


def scoped(svc: Service) -> ScopedReads:
    return ScopedReads(svc, Permission.READ_FILINGS)


async def page(
    svc: Service,
    caller: Caller,
    listing: Listing,
    filters: Mapping[str, Any],
    model: type[M],
    limit: int,
    offset: int,
) -> Page[M]:
    """One page of what the caller may see; a filter given as ``None`` is not applied."""
    given = {name: value for name, value in filters.items() if value is not None}
    total, docs = await scoped(svc).page(
        caller, listing.collection, given, listing.order, limit, offset
    )
    return Page(total=total, limit=limit, offset=offset, items=[model.of(doc) for doc in docs])


async def one(svc: Service, caller: Caller, listing: Listing, doc_id: str) -> Document:
    """The document when it exists and lies in the caller's scope, else 404."""
    return await scoped(svc).one(caller, listing.collection, doc_id, listing.what)


async def unknown_or_in_scope(svc: Service, caller: Caller, case_id: str) -> None:
    """A unit may file a case penalty has not heard of yet, or one in its scope; another
    unit's case answers 404, as if it did not exist."""
    known = await get_document(svc.db, storage.FILINGS, case_id)
    if known is not None:
        require_in_scope(caller, known, f"{FILINGS.what} {case_id}")
