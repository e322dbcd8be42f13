"""The gateway API's request and response models (the shapes its OpenAPI document shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class RefusalOut(BaseModel):
    index: int | None = Field(description="position in the batch (null for a single event)")
    id: str | None
    type: str | None
    code: str
    reason: str


class IngestResult(BaseModel):
    accepted: list[str] = Field(description="ids accepted (including duplicates)")
    duplicates: list[str] = Field(default_factory=list, description="ids already accepted")
    refused: list[RefusalOut] = Field(default_factory=list)
    detail: str | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    district: str | None
    unit: str | None
    scope: str


class EntityOut(Loose):
    id: str
    entity: str
    district: str | None = None
    unit: str | None = None
    status: str | None = None
    updated_at: Any = None
    event_time: datetime | None = None
    last_verb: str | None = None
    events: int = 0
    flags: list[str] = Field(default_factory=list)
    snapshot: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None
    trace_url: str | None = None


class TimelineOut(BaseModel):
    id: str
    type: str
    verb: str
    time: datetime
    status: str | None = None
    change: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None
    trace_url: str | None = None


class OpenData(BaseModel):
    figures: list[str]
    rows: list[dict[str, Any]]


class EntityDetail(BaseModel):
    item: EntityOut
    timeline: list[TimelineOut]


class EntityPage(BaseModel):
    items: list[EntityOut]
    total: int
    limit: int
    offset: int


class LooseDoc(Loose):
    id: str


class LoosePage(BaseModel):
    items: list[LooseDoc]
    total: int
    limit: int
    offset: int


class DistrictKpis(Loose):
    district: str
    name: str
    disposal_rate: float | None = Field(description="线索处置率: disposed / raised leads")


class Overview(BaseModel):
    districts: list[DistrictKpis]
    totals: dict[str, Any]


class Disposition(BaseModel):
    outcome: Literal["substantiated", "unfounded", "referred", "rectified", "discipline"] = Field(
        description="查实 / 不属实 / 移送 / 已整改 / 移送纪检监察 (issues a 移送函, followed up)"
    )
    note: str = Field(default="", max_length=2000)


class Me(BaseModel):
    sub: str
    role: str
    district: str | None
    unit: str | None
    scopes: list[str]
    personal_data: bool = Field(description="whether this role sees personal data unmasked")
    jaeger_url: str


def loose(doc: dict[str, Any]) -> LooseDoc:
    """A stored document as it is answered: its ``_id`` as ``id``, every other field kept."""
    return LooseDoc(**{k: v for k, v in doc.items() if k != "_id"}, id=str(doc["_id"]))
