"""The city: districts (行政区), streets (街道/镇) and enforcement units, from ``data/city.json``.

Shared by every service (routing, directories, demo data). The seed is Shanghai's 16
districts; unit ids are ``<district>-<kind>`` (e.g. ``310106-cgzf``, the Jing'an city
management enforcement bureau) and ``<district>-stNN-zhzf`` for a street's enforcement team.
The district justice bureau (``<district>-sfj``) supervises its district; ``310000-sfj``
supervises the city.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel

CITY_BUREAU = "310000-sfj"


class Unit(BaseModel):
    id: str
    name: str
    kind: str
    level: str  # district | street


class Street(BaseModel):
    id: str
    name: str
    unit: Unit


class District(BaseModel):
    code: str
    name: str
    units: list[Unit]
    streets: list[Street]

    @property
    def justice_bureau(self) -> str:
        """司法局: the district's supervising bureau (and triage queue owner)."""
        return f"{self.code}-sfj"

    def street_named(self, name: str) -> Street | None:
        return next((s for s in self.streets if s.name == name or s.id == name), None)


class City(BaseModel):
    code: str
    name: str
    districts: list[District]

    def district(self, code: str) -> District | None:
        return next((d for d in self.districts if d.code == code), None)

    def unit(self, unit_id: str) -> Unit | None:
        for d in self.districts:
            for u in d.units:
                if u.id == unit_id:
                    return u
            for s in d.streets:
                if s.unit.id == unit_id:
                    return s.unit
        return None

    def all_units(self) -> list[Unit]:
        return [u for d in self.districts for u in (*d.units, *(s.unit for s in d.streets))]

    def district_of_unit(self, unit_id: str) -> str | None:
        head = unit_id.split("-", 1)[0]
        return head if self.district(head) else None


@lru_cache(maxsize=1)
def load_city() -> City:
    raw = json.loads(resources.files("shared").joinpath("data/city.json").read_text("utf-8"))
    return City(code=raw["city"]["code"], name=raw["city"]["name"], districts=raw["districts"])


def discipline_body(district: str) -> str:
    """The 纪检监察机关 (纪委监委) of a district, or of the city for the city's code: the
    recipient of a 移送函 (its unit id in the notice directory)."""
    return f"{district}-jjjc"


def supervising_unit(unit_id: str) -> str:
    """Who supervises ``unit_id``: its district's justice bureau; the city for a bureau."""
    district = unit_id.split("-", 1)[0]
    if unit_id.endswith("-sfj"):
        return CITY_BUREAU
    return f"{district}-sfj"
