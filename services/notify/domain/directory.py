"""The unit directory (通知渠道目录): which channels each unit has and where they point.

Built from the city (``shared.city.load_city()``: every district, unit and street team) plus
the channel configuration in ``data/directory.yaml``: channels by unit kind, per-unit
overrides, the districts' short names used in document numbers. The deployment can still
point webhooks elsewhere through settings (see :func:`resolve_target`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.notify.domain.notice import Channel
from shared.city import CITY_BUREAU, City, discipline_body, load_city, supervising_unit


class UnitChannels(BaseModel):
    """Per-unit configuration in the data file; unset fields fall back to the defaults."""

    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] | None = None
    email: str | None = None
    webhook_url: str | None = None
    phone: str | None = None


class CityBureau(BaseModel):
    id: str = CITY_BUREAU
    name: str
    short_name: str


class DisciplineBodies(BaseModel):
    """The 纪检监察机关 of the city and of each district: recipients of 移送函 only."""

    model_config = ConfigDict(extra="forbid")

    name_suffix: str = "纪委监委"
    channels: list[Channel] = Field(default_factory=lambda: [Channel.INBOX, Channel.EMAIL])


class DirectoryFile(BaseModel):
    """``data/directory.yaml`` as written."""

    model_config = ConfigDict(extra="forbid")

    version: str
    issuer_suffix: str = Field(description="代字 of the issuing bureau, 司 for 司法局")
    email_domain: str
    city_bureau: CityBureau
    district_short_names: dict[str, str] = Field(default_factory=dict)
    channels_by_kind: dict[str, list[Channel]] = Field(default_factory=dict)
    default_channels: list[Channel] = Field(default_factory=lambda: [Channel.INBOX])
    units: dict[str, UnitChannels] = Field(default_factory=dict)
    discipline_bodies: DisciplineBodies | None = None


class DirectoryEntry(BaseModel):
    """One unit as the notify service sees it."""

    unit: str
    name: str
    district: str
    kind: str
    channels: list[Channel]
    email: str | None = None
    webhook_url: str | None = None
    phone: str | None = None


class UnitDirectory:
    """Every unit of the city with its channels (the inbox always among them)."""

    def __init__(self, city: City, config: DirectoryFile) -> None:
        self.city = city
        self.config = config
        self._entries: dict[str, DirectoryEntry] = {}
        bureau = config.city_bureau
        self._add(bureau.id, bureau.name, city.code, "justice")
        for district in city.districts:
            for unit in (*district.units, *(s.unit for s in district.streets)):
                self._add(unit.id, unit.name, district.code, unit.kind)
        if config.discipline_bodies is not None:
            bodies = config.discipline_bodies
            self.config.channels_by_kind.setdefault("discipline", bodies.channels)
            for code, name in (
                (city.code, city.name),
                *((d.code, d.name) for d in city.districts),
            ):
                self._add(discipline_body(code), name + bodies.name_suffix, code, "discipline")

    def _add(self, unit_id: str, name: str, district: str, kind: str) -> None:
        cfg = self.config.units.get(unit_id, UnitChannels())
        channels = cfg.channels or self.config.channels_by_kind.get(
            kind, self.config.default_channels
        )
        ordered = [Channel.INBOX, *(c for c in dict.fromkeys(channels) if c != Channel.INBOX)]
        self._entries[unit_id] = DirectoryEntry(
            unit=unit_id,
            name=name,
            district=district,
            kind=kind,
            channels=ordered,
            email=cfg.email or f"{unit_id}@{self.config.email_domain}",
            webhook_url=cfg.webhook_url,
            phone=cfg.phone,
        )

    def entry(self, unit_id: str) -> DirectoryEntry | None:
        return self._entries.get(unit_id)

    def entries(self) -> list[DirectoryEntry]:
        return list(self._entries.values())

    def short_name(self, district_code: str) -> str:
        """The district's one-character short name (简称) used in document numbers."""
        if district_code == self.city.code:
            return self.config.city_bureau.short_name
        if district_code in self.config.district_short_names:
            return self.config.district_short_names[district_code]
        district = self.city.district(district_code)
        if district is None:
            raise KeyError(f"unknown district {district_code}")
        return district.name[0]

    def issuer_for(self, recipient: str, requested_issuer: object = None) -> DirectoryEntry:
        """Who signs a notice: a justice bureau named by the request, else the recipient's
        supervising bureau (a bureau notifying itself is the city bureau's job)."""
        if isinstance(requested_issuer, str):
            named = self.entry(requested_issuer)
            if named is not None and named.kind == "justice":
                return named
        issuer = self.entry(supervising_unit(recipient))
        if issuer is None:  # a recipient outside the city: the city bureau signs
            issuer = self._entries[self.config.city_bureau.id]
        return issuer

    def issuer_prefix(self, issuer: DirectoryEntry) -> str:
        """``静司``: district short name + the bureau's 代字."""
        return self.short_name(issuer.district) + self.config.issuer_suffix


def resolve_target(
    entry: DirectoryEntry,
    channel: Channel,
    *,
    webhook_url_override: str | None = None,
    webhook_urls: Mapping[str, str] | None = None,
) -> str | None:
    """Where ``channel`` delivers for this unit (None: nowhere on file)."""
    if channel is Channel.INBOX:
        return entry.unit
    if channel is Channel.EMAIL:
        return entry.email
    if channel is Channel.WEBHOOK:
        return webhook_url_override or (webhook_urls or {}).get(entry.unit) or entry.webhook_url
    return entry.phone


def read_directory_file(path: str | None = None) -> DirectoryFile:
    """The directory configuration from ``path`` or the packaged ``data/directory.yaml``."""
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = resources.files("services.notify").joinpath("data/directory.yaml").read_text("utf-8")
    return DirectoryFile.model_validate(yaml.safe_load(text))


@lru_cache(maxsize=8)
def load_directory(path: str | None = None) -> UnitDirectory:
    return UnitDirectory(load_city(), read_directory_file(path))
