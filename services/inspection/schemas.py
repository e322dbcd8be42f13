"""Read models of the inspection API (``/v1/inspection``): what a stored document shows."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.api import Out


class InspectionOut(Out):
    id: str = Field(description="inspection_id")
    district: str
    unit: str
    enterprise: str
    enterprise_name: str | None = None
    sector: str | None = None
    at: dt.datetime
    day: str
    code_scanned: bool
    joint_id: str | None = None
    plan_id: str | None = None
    planned: bool
    result: str
    officers: list[dict[str, Any]]
    uncertified_officers: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class PlanOut(Out):
    id: str = Field(description="plan_id")
    unit: str
    district: str
    period_start: dt.date
    period_end: dt.date
    enterprises: list[str]
    sectors: list[str]
    double_random: bool
    filed_at: dt.datetime
    revision: int = 1


class OfficerOut(Out):
    id: str = Field(description="officer_id")
    unit: str
    district: str
    registered: bool
    status: str
    cert_no: str | None = None
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    suspended_since: dt.date | None = None
    suspended_until: dt.date | None = None
    revoked_since: dt.date | None = None
    reason: str | None = None


class ReviewOut(Out):
    id: str = Field(description="review_id")
    case_id: str
    unit: str
    district: str
    channel: str
    outcome: str
    corrected: bool
    decided_at: dt.datetime
    body: str | None = None


class RateOut(Out):
    id: str
    metric: Literal["certification", "correction"]
    scope: Literal["unit", "district"]
    key: str
    district: str
    unit: str | None = None
    numerator: int
    denominator: int
    rate: float | None
    line: float
    breached: bool
    crossings: int
    lead_id: str | None = None


class FlagOut(Out):
    id: str
    kind: str
    district: str
    unit: str | None = None
    subject_type: str
    subject_id: str
    inspection_id: str | None = None
    summary: str
    evidence: dict[str, Any]
    lead_id: str
    raised_at: dt.datetime


class EnterpriseFrequency(BaseModel):
    enterprise: str
    visits: int = Field(description="joint inspections counted once (综合查一次)")
    inspections: int
    units: int


class DistrictSummary(BaseModel):
    district: str
    since: dt.datetime
    inspections: int
    code_scanned: int
    code_rate: float | None = Field(description="亮码率")
    unplanned: int = Field(description="未备案检查")
    uncertified: int = Field(description="inspections with an officer without a valid cert")
    enterprises: list[EnterpriseFrequency] = Field(description="most inspected first")
