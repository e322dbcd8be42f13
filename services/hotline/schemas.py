"""What the hotline's HTTP API reads and answers: complaints (a list row, one with its
timeline), the bodies of the unit actions, routing catalogue entries and the matter table.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.hotline.domain.lifecycle import (
    Complainant,
    Complaint,
    Extension,
    Status,
    TimelineEntry,
    Verdict,
)
from services.hotline.domain.matters import Matter
from services.hotline.domain.routing import Level, RoutingEntry

Unit = Field(
    default=None,
    min_length=1,
    max_length=100,
    description="the acting unit, e.g. 310106-cgzf; must be the token's (default)",
)
By = Field(
    default=None, min_length=1, max_length=100, description="the officer's name (default: token)"
)


class ComplaintSummary(BaseModel):
    """One row of the complaint list."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="12345 order_id")
    district: str
    street: str | None
    address: str
    kind: str
    matter: str | None
    matter_name: str | None
    status: Status
    unit: str | None
    unit_level: str | None
    received_at: dt.datetime
    ack_due: dt.datetime | None
    due: dt.datetime | None
    overdue: bool
    escalated: bool
    returns: int
    handovers: int
    duplicate_of: str | None = Field(
        default=None, description="重复件: the first complaint of the same problem and place"
    )
    updated_at: dt.datetime | None


class ComplaintDetail(ComplaintSummary):
    """One complaint with its timeline (personal data of the complainant included)."""

    street_text: str | None
    target: str | None
    channel: str
    category: str | None
    classified_by: str
    description: str
    complainant: Complainant
    matter_level: str | None
    dispatched_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    limit_days: int | None
    ack_late: bool
    units_seen: list[str]
    extension: Extension | None
    extensions: list[Extension]
    outcome: str | None
    verdict: Verdict | None
    satisfaction: int | None
    case_ids: list[str]
    leads: list[str]
    duplicates: list[str] = Field(
        default_factory=list, description="later reports linked to this one as duplicates"
    )
    timeline: list[TimelineEntry]


def detail(complaint: Complaint) -> ComplaintDetail:
    """The answer of every command and of ``GET /v1/complaints/{order_id}``."""
    return ComplaintDetail.model_validate(complaint.model_dump())


class UnitAction(BaseModel):
    """The body of a unit action: who acts, which must be the token's (the default)."""

    model_config = ConfigDict(extra="forbid")
    unit: str | None = Unit
    by: str | None = By


class ReturnIn(UnitAction):
    reason: str = Field(min_length=1, max_length=2000, description="退单理由")


class RerouteIn(UnitAction):
    to_unit: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)


class ExtensionIn(UnitAction):
    days: int = Field(ge=1, le=60, description="working days asked for")
    reason: str = Field(min_length=1, max_length=2000, description="延期理由")


class ExtensionDecisionIn(UnitAction):
    approved: bool
    note: str | None = Field(default=None, max_length=2000)


class ResolveIn(UnitAction):
    outcome: str = Field(min_length=1, max_length=4000, description="办理结果")
    violation_confirmed: bool | None = Field(
        default=None, description="违法行为成立 (starts the 应立尽立 watch)"
    )
    verdict: Verdict | None = None

    @model_validator(mode="after")
    def _one_verdict(self) -> ResolveIn:
        """``violation_confirmed`` is the short form of a verdict; both given must agree."""
        said = self.violation_confirmed
        if self.verdict is None and said is not None:
            self.verdict = "violation_confirmed" if said else "no_violation"
        elif self.verdict is not None and said is not None:
            if (self.verdict == "violation_confirmed") != said:
                raise ValueError("verdict and violation_confirmed disagree")
        return self


class RoutingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Level
    unit: str = Field(min_length=1, max_length=100)
    streets: dict[str, str] = Field(default_factory=dict)
    by: str | None = By


class RoutingOut(RoutingEntry):
    model_config = ConfigDict(extra="ignore")
    version: int = 1
    source: str | None = None
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


class MattersOut(BaseModel):
    version: str
    matters: list[Matter]
