"""The penalty catalogue (处罚裁量目录): legal provision → party type → fine range and bands.

A decided penalty is judged against the range its provision sets for its party type; the
maximum of that range is what makes a penalty top-tier (顶格). The catalogue is a versioned
data file (``data/catalogue.yaml``) so that every judgement can say which version it used.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

Domain = Literal[
    "city_management", "market_regulation", "environment", "construction", "food_safety"
]
PartyType = Literal["individual", "business", "other"]

_SPACES = re.compile(r"\s+")


def normalise_provision(text: str) -> str:
    """Provisions arrive typed by hand: ignore whitespace and ASCII/full-width book marks."""
    cleaned = _SPACES.sub("", text).replace("<<", "《").replace(">>", "》")
    return cleaned.replace("〈", "《").replace("〉", "》")


class Band(BaseModel):
    """A discretion band (裁量档次) inside a fine range: 从轻 / 一般 / 从重."""

    band: str
    label: str
    min: float = Field(ge=0)
    max: float = Field(ge=0)


class FineRange(BaseModel):
    """The legal fine range (罚款幅度, 元) for one party type, with its bands."""

    min: float = Field(ge=0)
    max: float = Field(ge=0)
    bands: list[Band] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> FineRange:
        if self.max < self.min:
            raise ValueError(f"range max {self.max} below min {self.min}")
        for band in self.bands:
            if not (self.min <= band.min <= band.max <= self.max):
                raise ValueError(f"band {band.band} [{band.min}, {band.max}] outside the range")
        return self

    def band_of(self, fine: float) -> Band | None:
        """The highest band holding ``fine`` (band edges belong to the heavier band)."""
        for band in reversed(self.bands):
            if band.min <= fine <= band.max:
                return band
        return None


class Provision(BaseModel):
    """One legal provision (法律条款) with its ranges per party type."""

    id: str
    provision: str
    domain: Domain
    matter: str
    aliases: list[str] = Field(default_factory=list)
    party_types: dict[PartyType, FineRange]


class Catalogue(BaseModel):
    """The whole catalogue, one version."""

    version: str
    effective_from: str
    note: str = ""
    provisions: list[Provision]

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        ids = [p.id for p in self.provisions]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate provision ids in the catalogue")
        return self

    def lookup(self, provision: str) -> Provision | None:
        """Find a provision by its id, its text or an alias (whitespace-insensitive)."""
        return self._index.get(normalise_provision(provision))

    @cached_property
    def _index(self) -> dict[str, Provision]:
        index: dict[str, Provision] = {}
        for p in self.provisions:
            for key in (p.id, p.provision, *p.aliases):
                index[normalise_provision(key)] = p
        return index


def load_catalogue(path: str | None = None) -> Catalogue:
    """Read the catalogue from ``path`` or the packaged ``data/catalogue.yaml``."""
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = (
            resources.files("services.penalty").joinpath("data/catalogue.yaml").read_text("utf-8")
        )
    return Catalogue.model_validate(yaml.safe_load(text))


@lru_cache(maxsize=4)
def cached_catalogue(path: str | None = None) -> Catalogue:
    return load_catalogue(path)
