"""What a batch of inspection events will read, loaded before its handlers run: one ``$in``
query per collection and look-up for the whole batch instead of queries per event.

Each key function sees every event type of the ingest topic and answers only for the types
whose handler reads that collection (bad data: nothing; the handler refuses it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.inspection import storage
from services.inspection.domain.rules import window_bucket
from shared.consumer import KeyOf, data_key
from shared.contracts import LeadKind
from shared.envelope import Envelope
from shared.unit_of_work import Lookup

PLANNED = "gov.enforcement.inspection.planned"
CONDUCTED = "gov.enforcement.inspection.conducted"
OFFICER_CHANGES = (
    "gov.enforcement.officer.certified",
    "gov.enforcement.officer.suspended",
    "gov.enforcement.officer.revoked",
)
REVIEWED = "gov.enforcement.review.decided"
INSPECTION_FLAGS = (
    LeadKind.UNPLANNED_INSPECTION,
    LeadKind.CODE_NOT_SHOWN,
    LeadKind.UNCERTIFIED_OFFICER,
)
"""The findings an inspection may be flagged with, each keyed by its inspection id."""


def text(event: Envelope, field: str) -> str | None:
    """A text field of the event's data (``None`` when absent or not text)."""
    value = event.data.get(field) if isinstance(event.data, dict) else None
    return value if isinstance(value, str) else None


def of_types(types: tuple[str, ...], key_of: KeyOf) -> KeyOf:
    """``key_of`` for events of these types only."""

    def keys(event: Envelope) -> Any:
        return key_of(event) if event.type in types else None

    return keys


def officers_named(event: Envelope) -> list[str]:
    """The officer an officer event is about, or every officer on an inspection."""
    if event.type in OFFICER_CHANGES:
        return [officer] if (officer := text(event, "officer_id")) else []
    officers = event.data.get("officers") if isinstance(event.data, dict) else None
    if event.type != CONDUCTED or not isinstance(officers, list):
        return []
    return [o["id"] for o in officers if isinstance(o, dict) and isinstance(o.get("id"), str)]


def rates_judged(event: Envelope) -> list[str]:
    """The rates an event may re-judge: 持证率 (officers, inspections), 被纠错率 (reviews)."""
    metric = "correction" if event.type == REVIEWED else "certification"
    unit, district = text(event, "unit"), text(event, "district")
    if unit is None or district is None or event.type == PLANNED:
        return []
    return [storage.rate_id(metric, "unit", unit), storage.rate_id(metric, "district", district)]


def inspection_flags(window_days: int) -> KeyOf:
    """The flags an inspection may raise: one per rule, and the 多头/重复 one of its window."""

    def keys(event: Envelope) -> list[str]:
        inspection, district = text(event, "inspection_id"), text(event, "district")
        enterprise, at = text(event, "enterprise"), text(event, "at")
        if event.type != CONDUCTED or None in (inspection, district, enterprise, at):
            return []
        flags = [f"{kind.value}:{inspection}" for kind in INSPECTION_FLAGS]
        try:
            bucket = window_bucket(dt.datetime.fromisoformat(str(at)), window_days)
        except ValueError:
            return flags
        repeated = LeadKind.REPEATED_INSPECTION.value
        return [*flags, f"{repeated}:{district}:{enterprise}:{bucket}"]

    return keys


def batch_reads(repeat_window_days: int) -> dict[str | Lookup, KeyOf]:
    """The consumer's ``prefetch``: per collection (or look-up), what an event will read.

    An inspection's officers by unit and district (for its 持证率) are not prefetched: only
    an inspection with an uncertified officer reads them, once per unit and district a batch.
    """
    return {
        storage.PLANS: of_types((PLANNED,), data_key("plan_id")),
        storage.INSPECTIONS: of_types((CONDUCTED,), data_key("inspection_id")),
        storage.OFFICERS: officers_named,
        storage.REVIEWS: of_types((REVIEWED,), data_key("review_id")),
        storage.RATES: rates_judged,
        storage.FLAGS: inspection_flags(repeat_window_days),
        storage.PLANS_OF_UNIT: of_types((CONDUCTED,), data_key("unit")),
        storage.INSPECTIONS_OF_ENTERPRISE: of_types((CONDUCTED,), data_key("enterprise")),
        **{
            storage.OFFICERS_BY[scope]: of_types(OFFICER_CHANGES, data_key(scope))
            for scope in ("unit", "district")
        },
        **{
            storage.REVIEWS_BY[scope]: of_types((REVIEWED,), data_key(scope))
            for scope in ("unit", "district")
        },
    }
