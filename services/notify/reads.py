"""The read side of the notify API: notices, letters and units in the caller's scope.

A notice's or letter's unit is its recipient (``recipient_unit``); out of scope answers like
a missing object (404), so ids of other districts and units do not leak.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from services.notify import storage
from services.notify.domain.directory import DirectoryEntry, UnitDirectory
from services.notify.domain.notice import NoticeStatus
from services.notify.schemas import DeliveryOut, LetterOut, NoticeSummary
from shared.api import Page
from shared.clock import Instant
from shared.contracts import NoticeKind
from shared.identity import Caller, Permission, present, rename_scope, require_in_scope, within
from shared.mongo import Document, page
from shared.service import Service

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
RECIPIENT = {"unit": "recipient_unit"}
"""The scope's ``unit`` is a notice's or letter's recipient."""


def known_unit(directory: UnitDirectory, unit: str) -> DirectoryEntry:
    """The unit's directory entry, or 404."""
    entry = directory.entry(unit)
    if entry is None:
        raise HTTPException(404, detail=f"unknown unit {unit!r}")
    return entry


def unit_in_scope(caller: Caller, directory: UnitDirectory, unit: str) -> DirectoryEntry:
    """The unit's directory entry when the unit lies in the caller's scope, else 404."""
    entry = known_unit(directory, unit)
    require_in_scope(caller, {"unit": entry.unit, "district": entry.district}, f"unit {unit}")
    return entry


@dataclass
class NoticeFilters:
    """The filters both notice lists take (query parameters: ``Depends()`` reads them)."""

    kind: NoticeKind | None = None
    status: NoticeStatus | None = None
    acknowledged: bool | None = None
    since: Instant | None = None

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.kind is not None:
            query["kind"] = self.kind.value
        if self.status is not None:
            query["status"] = self.status
        if self.acknowledged is not None:
            # a range (any time since the epoch) rather than ≠ null, so the index serves it
            query["acknowledged_at"] = {"$gt": EPOCH} if self.acknowledged else None
        if self.since is not None:
            query["created_at"] = {"$gte": self.since}
        return query


def given(wanted: dict[str, Any]) -> dict[str, Any]:
    """The filters a request gave (``None``: not asked for)."""
    return {field: value for field, value in wanted.items() if value is not None}


async def _notices(
    svc: Service, caller: Caller, query: dict[str, Any], limit: int, offset: int
) -> Page[NoticeSummary]:
    """One page of notices, newest first, masked for the caller."""
    total, docs = await page(
        svc.db, storage.NOTICES, query, limit=limit, offset=offset, sort=storage.NOTICES_ORDER
    )
    items = [NoticeSummary.of(present(caller, doc)) for doc in docs]
    return Page(total=total, limit=limit, offset=offset, items=items)


async def inbox(
    svc: Service,
    caller: Caller,
    directory: UnitDirectory,
    unit: str,
    filters: dict[str, Any],
    limit: int,
    offset: int,
) -> Page[NoticeSummary]:
    """A unit's inbox (站内信) when the unit lies in the caller's scope (else 404)."""
    caller.require(Permission.READ_NOTICES)
    unit_in_scope(caller, directory, unit)
    return await _notices(svc, caller, {"recipient_unit": unit, **filters}, limit, offset)


async def notices(
    svc: Service, caller: Caller, filters: dict[str, Any], limit: int, offset: int
) -> Page[NoticeSummary]:
    """Notices across units, narrowed to the caller's scope."""
    caller.require(Permission.READ_NOTICES)
    query = within(rename_scope(caller.scope, RECIPIENT), filters)
    return await _notices(svc, caller, query, limit, offset)


async def notice_in_scope(svc: Service, caller: Caller, nid: str) -> Document:
    """The stored notice when it exists and lies in the caller's scope, else 404."""
    doc = await storage.notice_document(svc.db, nid)
    return require_in_scope(caller, doc, f"notice {nid}", RECIPIENT)


async def readable_notice(svc: Service, caller: Caller, nid: str) -> Document:
    """A notice the caller may read, masked for it (404 when missing or out of scope)."""
    caller.require(Permission.READ_NOTICES)
    return present(caller, await notice_in_scope(svc, caller, nid))


def delivery_rows(notice: Document, jobs: list[Document]) -> list[DeliveryOut]:
    """Every channel of the notice: the inbox and skipped ones have no job document."""
    by_channel = {job["channel"]: job for job in jobs}
    rows = []
    for channel, info in notice.get("channels", {}).items():
        job = by_channel.get(channel)
        if job is not None:
            rows.append(DeliveryOut.model_validate(job))
        else:
            rows.append(
                DeliveryOut.model_validate(
                    {**info, "channel": channel, "attempts": info.get("attempts") or 0}
                )
            )
    return rows


async def deliveries(svc: Service, caller: Caller, nid: str) -> list[DeliveryOut]:
    """Delivery status per channel of a notice the caller may read."""
    notice = await readable_notice(svc, caller, nid)
    return delivery_rows(notice, await storage.deliveries_of(svc.db, nid))


async def readable_letter(svc: Service, caller: Caller, lid: str) -> LetterOut:
    """A letter the caller may read (404 when missing or out of scope)."""
    caller.require(Permission.READ_NOTICES)
    doc = await svc.db[storage.LETTERS].find_one({"_id": lid})
    return LetterOut.of(require_in_scope(caller, doc, f"letter {lid}", RECIPIENT))


async def letter_page(
    svc: Service, caller: Caller, query: dict[str, Any], limit: int, offset: int
) -> Page[LetterOut]:
    """One page of letters, newest first, narrowed to the caller's scope."""
    caller.require(Permission.READ_NOTICES)
    scoped = within(rename_scope(caller.scope, RECIPIENT), query)
    total, docs = await page(
        svc.db, storage.LETTERS, scoped, limit=limit, offset=offset, sort=storage.LETTERS_ORDER
    )
    return Page(total=total, limit=limit, offset=offset, items=[LetterOut.of(doc) for doc in docs])
