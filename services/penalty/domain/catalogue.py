"""The penalty catalogue (处罚裁量目录): legal provision → party type → fine range and bands.

A decided penalty is judged against the range its provision sets for its party type; the
maximum of that range is what makes a penalty top-tier (顶格). The catalogue is a versioned
data file (``data/catalogue.yaml``) so that every judgement can say which version it used.

Some provisions set the fine as a multiple (倍数罚) of the goods value (货值金额) or the illegal
gains (违法所得) once that basis reaches an amount, e.g. 《食品安全法》第一百二十四条: 货值金额
不足一万元的，并处五万元以上十万元以下罚款；货值金额一万元以上的，并处货值金额十倍以上二十倍
以下罚款. A range then carries a :class:`MultipleRange` next to its fixed amounts. A provision
may also list the non-fine penalties (``measures``, 《行政处罚法》第九条) it provides.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from shared.contracts import PenaltyMeasure

Domain = Literal[
    "city_management", "market_regulation", "environment", "construction", "food_safety"
]
PartyType = Literal["individual", "business", "other"]
Basis = Literal["goods_value", "illegal_gains"]
Measure = PenaltyMeasure

BASIS_LABELS: dict[str, str] = {"goods_value": "货值金额", "illegal_gains": "违法所得"}
MEASURE_LABELS: dict[str, str] = {
    "warning": "警告",
    "confiscate_gains": "没收违法所得",
    "confiscate_property": "没收非法财物",
    "suspend_license": "暂扣许可证件",
    "lower_qualification": "降低资质等级",
    "revoke_license": "吊销许可证件",
    "restrict_business": "限制开展生产经营活动",
    "suspend_business": "责令停产停业",
    "order_closure": "责令关闭",
    "restrict_practice": "限制从业",
}
"""The kinds of administrative penalty of 《行政处罚法》第九条 other than the fine."""

BAND_SHARES: tuple[tuple[str, str, float, float], ...] = (
    ("lighter", "从轻", 0.0, 0.3),
    ("ordinary", "一般", 0.3, 0.7),
    ("heavier", "从重", 0.7, 1.0),
)
"""Bands of a computed (multiple-based) range: the catalogue's 0–30% / 30–70% / 70–100%."""

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


class MultipleRange(BaseModel):
    """倍数罚: ``min_times``–``max_times`` × the basis, once the basis reaches ``at_least``."""

    basis: Basis
    at_least: float = Field(default=0, ge=0)
    min_times: float = Field(ge=0)
    max_times: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> MultipleRange:
        if self.max_times < self.min_times:
            raise ValueError(f"max_times {self.max_times} below min_times {self.min_times}")
        return self

    def applies(self, value: float) -> bool:
        return value > 0 and value >= self.at_least


class FineRange(BaseModel):
    """The legal fine range (罚款幅度, 元) for one party type, with its bands."""

    min: float = Field(ge=0)
    max: float = Field(ge=0)
    bands: list[Band] = Field(default_factory=list)
    multiple: MultipleRange | None = Field(
        default=None, description="倍数罚 replacing the fixed range once the basis is reached"
    )

    @model_validator(mode="after")
    def _ordered(self) -> FineRange:
        if self.max < self.min:
            raise ValueError(f"range max {self.max} below min {self.min}")
        for band in self.bands:
            if not (self.min <= band.min <= band.max <= self.max):
                raise ValueError(f"band {band.band} [{band.min}, {band.max}] outside the range")
        return self

    def for_basis(self, value: float) -> FineRange:
        """The range that applies for this basis amount (the fixed one below ``at_least``)."""
        m = self.multiple
        if m is None or not m.applies(value):
            return self
        lo, hi = m.min_times * value, m.max_times * value
        bands = [
            Band(band=b, label=label, min=lo + (hi - lo) * a, max=lo + (hi - lo) * z)
            for b, label, a, z in BAND_SHARES
        ]
        return FineRange(min=lo, max=hi, bands=bands)

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
    measures: list[Measure] | None = Field(
        default=None, description="non-fine penalties the provision provides (None: unchecked)"
    )
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

    def search(
        self, domain: str | None, party_type: str | None, text: str | None
    ) -> list[Provision]:
        """The provisions of ``domain`` that set a range for ``party_type`` and whose
        provision or matter contains ``text`` (a criterion left ``None`` takes all)."""
        return [
            provision
            for provision in self.provisions
            if (domain is None or provision.domain == domain)
            and (party_type is None or party_type in provision.party_types)
            and (text is None or text in provision.provision or text in provision.matter)
        ]

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
