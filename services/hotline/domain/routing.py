"""The routing catalogue (派单目录): matter × district × street → the responsible unit.

Each entry says whether the district department handles the matter itself (``district``) or
the matter is delegated to the street/town enforcement teams (``street``, 赋权街镇), with
per-street exceptions. A work order whose matter, district or (for a delegated matter)
street is unknown is never dropped: it goes to the district justice bureau's triage queue
(``<district>-sfj``), or the city bureau's when even the district is unknown.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from shared.city import CITY_BUREAU, City, District, Street

Level = Literal["district", "street"]
RouteLevel = Literal["district", "street", "triage"]


class RoutingEntry(BaseModel):
    """Who handles one matter in one district."""

    district: str = Field(pattern=r"^\d{6}$")
    matter: str = Field(min_length=1, max_length=64)
    level: Level
    unit: str = Field(description="the district department (the delegating one when 'street')")
    streets: dict[str, str] = Field(
        default_factory=dict, description="street id → unit: exceptions for single streets"
    )

    @property
    def key(self) -> str:
        return entry_key(self.district, self.matter)


class RoutingCatalogue(BaseModel):
    version: str
    note: str = ""
    entries: list[RoutingEntry]


class Route(BaseModel):
    """Where a work order goes and why."""

    unit: str
    level: RouteLevel
    reason: str
    street: str | None = Field(default=None, description="the street id the order was placed in")
    matter_level: Level | None = Field(
        default=None, description="the catalogue level of the matter (None: not in catalogue)"
    )


def entry_key(district: str, matter: str) -> str:
    return f"{district}:{matter}"


def triage_unit(city: City, district: str) -> str:
    """The triage queue: the district bureau (司法局), or the city's for an unknown district."""
    d = city.district(district)
    return d.justice_bureau if d else CITY_BUREAU


def find_street(district: District, street: str | None) -> Street | None:
    """A street by id or name; citizens' spellings may omit the 街道/镇 suffix."""
    if not street:
        return None
    street = street.strip()
    found = district.street_named(street)
    if found is not None:
        return found
    for s in district.streets:
        for suffix in ("街道", "镇"):
            if s.name.removesuffix(suffix) == street.removesuffix(suffix):
                return s
    return None


def route(
    city: City,
    district_code: str,
    street_name: str | None,
    matter: str | None,
    entry: RoutingEntry | None,
) -> Route:
    """Apply the catalogue to one work order."""
    district = city.district(district_code)
    if district is None:
        return Route(
            unit=CITY_BUREAU, level="triage", reason=f"未知行政区 {district_code}，转市司法局分拨"
        )
    street = find_street(district, street_name)
    street_id = street.id if street else None
    triage = district.justice_bureau
    if matter is None:
        return Route(
            unit=triage, level="triage", reason="无法识别执法事项，转区司法局分拨", street=street_id
        )
    if entry is None:
        return Route(
            unit=triage,
            level="triage",
            reason=f"派单目录无 {matter} 事项，转区司法局分拨",
            street=street_id,
        )
    if street is not None and street.id in entry.streets:
        return Route(
            unit=entry.streets[street.id],
            level=level_of(city, entry.streets[street.id]),
            reason=f"派单目录：{street.name}例外",
            street=street_id,
            matter_level=entry.level,
        )
    if entry.level == "district":
        return Route(
            unit=entry.unit,
            level="district",
            reason="派单目录：区级部门管辖",
            street=street_id,
            matter_level="district",
        )
    if street is None:
        return Route(
            unit=triage,
            level="triage",
            reason="赋权街镇事项但街镇不明，转区司法局分拨",
            street=None,
            matter_level="street",
        )
    return Route(
        unit=street.unit.id,
        level="street",
        reason=f"派单目录：赋权{street.name}",
        street=street_id,
        matter_level="street",
    )


def level_of(city: City, unit_id: str) -> RouteLevel:
    unit = city.unit(unit_id)
    if unit is None or unit.kind == "justice":
        return "triage"
    return "street" if unit.level == "street" else "district"


def redispatch_after_return(
    city: City, planned: Route, returning_unit: str, district: str
) -> Route:
    """退单 → 重新派单: to the catalogue's unit when someone else held it, else to triage.

    A unit the catalogue names cannot return its own matter to nobody: the supervising
    bureau decides (and that refusal is what the bounce detector watches).
    """
    if planned.level != "triage" and planned.unit != returning_unit:
        return planned.model_copy(update={"reason": "退单后按派单目录重新派单"})
    return Route(
        unit=triage_unit(city, district),
        level="triage",
        reason="责任单位退单，转区司法局分拨",
        street=planned.street,
        matter_level=planned.matter_level,
    )


def load_routing(path: str | None = None) -> RoutingCatalogue:
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = resources.files("services.hotline").joinpath("data/routing.json").read_text("utf-8")
    return RoutingCatalogue.model_validate(json.loads(text))


def validate_entry(city: City, entry: RoutingEntry) -> list[str]:
    """Problems with an entry (empty: fine): units must exist and belong to the district."""
    problems: list[str] = []
    district = city.district(entry.district)
    if district is None:
        return [f"unknown district {entry.district}"]
    unit = city.unit(entry.unit)
    if unit is None or not entry.unit.startswith(entry.district):
        problems.append(f"unit {entry.unit} is not a unit of district {entry.district}")
    elif unit.level != "district" or unit.kind == "justice":
        problems.append(f"unit {entry.unit} is not a district enforcement department")
    for street_id, unit_id in entry.streets.items():
        if district.street_named(street_id) is None:
            problems.append(f"unknown street {street_id} in district {entry.district}")
        if city.unit(unit_id) is None or not unit_id.startswith(entry.district):
            problems.append(f"unit {unit_id} is not a unit of district {entry.district}")
    return problems
