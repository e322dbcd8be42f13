"""The gateway API's request and response models (the shapes its OpenAPI document shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AsStored(BaseModel):
    """A read model that answers the stored fields as they are (projections vary by entity)."""

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


class EntityOut(AsStored):
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


class StoredDocument(AsStored):
    id: str


class DocumentPage(BaseModel):
    items: list[StoredDocument]
    total: int
    limit: int
    offset: int


class DistrictKpis(AsStored):
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


def stored_document(doc: dict[str, Any]) -> StoredDocument:
    """A stored document as it is answered: its ``_id`` as ``id``, every other field kept."""
    return StoredDocument(**{k: v for k, v in doc.items() if k != "_id"}, id=str(doc["_id"]))


class EnterpriseFrequency(BaseModel):
    enterprise: str | None = Field(description="统一社会信用代码")
    visits: int = Field(description="inspections, a joint one (综合查一次) counted once")
    inspections: int
    units: int = Field(description="how many units inspected it (多头检查)")


class InspectionDistrict(BaseModel):
    district: str
    name: str
    inspections: int
    code_scanned: int
    code_rate: float | None = Field(description="亮码率: inspections with the 检查码 scanned")
    unplanned: int = Field(description="未备案检查: outside every filed plan")
    uncertified: int = Field(description="inspections with an officer without valid certificate")
    top_enterprises: list[EnterpriseFrequency]


class InspectionSummary(BaseModel):
    since: datetime
    items: list[InspectionDistrict]


class InspectionRate(BaseModel):
    scope: Literal["district", "unit"]
    district: str
    unit: str | None = None
    officers: int
    certified: int
    certification_rate: float | None = Field(description="持证率: valid certificates / officers")
    reviews: int
    corrected: int
    correction_rate: float | None = Field(
        description="被纠错率: reviews (复议, 诉讼, 检察建议) that corrected the act / reviews"
    )
    crossings: dict[str, int] = Field(
        description="metric → times the inspection service found it over its line"
    )


class InspectionRates(BaseModel):
    items: list[InspectionRate]
