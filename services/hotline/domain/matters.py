"""Enforcement matters (执法事项) and the classification of 12345 work orders.

A work order names its matter by a category code when the 12345 operator chose one;
otherwise the description is matched against the keyword table (``data/matters.yaml``).
The matter with the largest total length of matched keywords wins (longer phrases are more
specific); a tie goes to the matter listed first. No match: the matter stays unknown and the
order goes to the district bureau's triage queue.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator


class Matter(BaseModel):
    """One enforcement matter with the words citizens use for it."""

    code: str = Field(min_length=1, max_length=64)
    name: str
    unit_kind: str = Field(description="district department kind: cgzf / scjg / sthj / zjw")
    keywords: list[str] = Field(default_factory=list)
    resolve_days: dict[str, int] = Field(
        default_factory=dict, description="per-kind 办结 limit overriding the settings"
    )


class MatterTable(BaseModel):
    version: str
    matters: list[Matter]

    @model_validator(mode="after")
    def _unique(self) -> MatterTable:
        codes = [m.code for m in self.matters]
        if len(codes) != len(set(codes)):
            raise ValueError("duplicate matter codes in the keyword table")
        return self

    @cached_property
    def by_code(self) -> dict[str, Matter]:
        return {m.code.upper(): m for m in self.matters}

    def get(self, code: str | None) -> Matter | None:
        return self.by_code.get(code.strip().upper()) if code else None


class Classification(BaseModel):
    """Which matter a work order is about, and how that was decided."""

    matter: str | None
    by: Literal["category", "keywords", "none"]
    keywords: list[str] = Field(default_factory=list)
    score: int = 0


def classify(table: MatterTable, category: str | None, description: str) -> Classification:
    """A known category code wins; else the best keyword match; else unknown."""
    given = table.get(category)
    if given is not None:
        return Classification(matter=given.code, by="category")
    best: Classification | None = None
    for matter in table.matters:
        hits = [k for k in matter.keywords if k and k in description]
        score = sum(len(k) for k in hits)
        if score and (best is None or score > best.score):
            best = Classification(matter=matter.code, by="keywords", keywords=hits, score=score)
    return best or Classification(matter=None, by="none")


def load_matters(path: str | None = None) -> MatterTable:
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = resources.files("services.hotline").joinpath("data/matters.yaml").read_text("utf-8")
    return MatterTable.model_validate(yaml.safe_load(text))


@lru_cache(maxsize=4)
def cached_matters(path: str | None = None) -> MatterTable:
    return load_matters(path)
