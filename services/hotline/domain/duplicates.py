"""Duplicate complaints (重复件, MISSION row 12): pure decisions, no I/O.

The same problem at the same place, reported again within a window under a new order id, is
linked to the first complaint: same district, matter and street, an address that names the
same place (the same house numbers and similar wording) and a similar description. Only
originals are candidates, so a third report links to the first one, not to the second.

Similarity is the Dice coefficient of character bigrams of the normalised texts (Chinese has
no word boundaries; bigrams tolerate 附近/门口-style variations and reordering).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

from services.hotline.domain.leads import normalise_place

_DIGITS = re.compile(r"\d+")
TEXT_CHARS = 200
"""How much of a description a candidate keeps (enough to compare, no whole complaint)."""
CANDIDATE_CAP = 200
"""Most candidates a street keeps per matter (the newest)."""


class DuplicateThresholds(BaseModel):
    window_days: float = Field(default=2.0, gt=0)
    address_similarity: float = Field(default=0.75, ge=0, le=1)
    text_similarity: float = Field(default=0.5, ge=0, le=1)


class Candidate(BaseModel):
    """What a complaint that may be repeated keeps for later comparisons."""

    id: str
    received_at: dt.datetime
    address: str
    text: str


class Match(BaseModel):
    original: str
    address_similarity: float
    text_similarity: float


def normalise_text(text: str) -> str:
    return normalise_place(text)[:TEXT_CHARS]


def candidate(order_id: str, received_at: dt.datetime, address: str, text: str) -> Candidate:
    return Candidate(
        id=order_id,
        received_at=received_at,
        address=normalise_place(address),
        text=normalise_text(text),
    )


def _bigrams(text: str) -> set[str]:
    if len(text) < 2:
        return {text} if text else set()
    return {text[i : i + 2] for i in range(len(text) - 1)}


def similarity(a: str, b: str) -> float:
    """Dice coefficient of character bigrams, 0 (nothing shared) to 1 (the same)."""
    x, y = _bigrams(a), _bigrams(b)
    if not x or not y:
        return 0.0
    return 2 * len(x & y) / (len(x) + len(y))


def address_similarity(a: str, b: str) -> float:
    """Addresses with different house numbers (1000号 vs 1002号) are different places."""
    if _DIGITS.findall(a) != _DIGITS.findall(b):
        return 0.0
    return similarity(a, b)


def street_key(street: str | None, street_text: str | None) -> str:
    """The street candidates are kept by: its id, else the street as given, else unknown."""
    if street:
        return f"street:{street}"
    if street_text and street_text.strip():
        return f"street:{normalise_place(street_text)}"
    return "street:?"


def find_original(
    new: Candidate, candidates: Iterable[Candidate], t: DuplicateThresholds
) -> Match | None:
    """The first earlier candidate within the window that names the same place and problem.

    ``candidates`` are the originals of the same district, matter and street.
    """
    since = new.received_at - dt.timedelta(days=t.window_days)
    for old in sorted(candidates, key=lambda c: (c.received_at, c.id)):
        if old.id == new.id or not since <= old.received_at <= new.received_at:
            continue
        place = address_similarity(new.address, old.address)
        if place < t.address_similarity:
            continue
        text = similarity(new.text, old.text)
        if text >= t.text_similarity:
            return Match(
                original=old.id,
                address_similarity=round(place, 3),
                text_similarity=round(text, 3),
            )
    return None


def remember(candidates: list[Candidate], new: Candidate, window_days: float) -> list[Candidate]:
    """``candidates`` with ``new`` added (once), those before its window forgotten."""
    kept = [c for c in candidates if c.id != new.id] + [new]
    newest = max(c.received_at for c in kept)
    since = newest - dt.timedelta(days=window_days)
    kept = sorted((c for c in kept if c.received_at >= since), key=lambda c: (c.received_at, c.id))
    return kept[-CANDIDATE_CAP:]


class StreetCandidates(BaseModel):
    """The originals of one matter in one street of one district within the window (kept in
    the ``hotspots`` collection next to the places, read by id with them)."""

    id: str
    candidates: list[Candidate] = []
