"""The life of a complaint (工单) and its timeline: who did what, when, and why.

received → dispatched (派单) → acknowledged (签收, in progress) → resolved (办结) → closed
(回访/满意度); a return (退单, with reason) sends it back to dispatch; an extension (延期) is
requested before the deadline and approved or refused by the supervising bureau.

Each transition is a pure function: it checks the current state, changes the complaint and
appends one :class:`TimelineEntry`, or raises :class:`TransitionRefused` with the reason
(HTTP 409, or a quarantined event when it came from the 12345 platform).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.hotline.domain.routing import Route, RouteLevel

Status = Literal["received", "dispatched", "acknowledged", "resolved", "closed"]
Verdict = Literal["violation_confirmed", "rectified", "no_violation", "not_applicable"]
OPEN_STATUSES: tuple[Status, ...] = ("received", "dispatched", "acknowledged")


class TransitionRefused(ValueError):
    """The action does not fit the complaint's current state; the message says why."""


class TimelineEntry(BaseModel):
    verb: str
    at: dt.datetime
    by: str = Field(description="the officer, unit or system that acted")
    unit: str | None = Field(default=None, description="the unit acting (or receiving)")
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class Extension(BaseModel):
    """延期: requested by the holding unit, decided by its supervising bureau."""

    status: Literal["pending", "approved", "refused"]
    days: int
    reason: str
    requested_by: str
    requested_unit: str
    requested_at: dt.datetime
    decided_by: str | None = None
    decided_unit: str | None = None
    decided_at: dt.datetime | None = None
    note: str | None = None


class Complainant(BaseModel):
    name: str
    phone: str


class Complaint(BaseModel):
    """A 12345 work order as the hotline service keeps it (``id`` = order_id)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    district: str
    street: str | None = Field(default=None, description="street id when known")
    street_text: str | None = Field(default=None, description="street as the citizen gave it")
    address: str
    target: str | None = None
    place_keys: list[str] = Field(default_factory=list)
    target_keys: list[str] = Field(default_factory=list)
    kind: str = "complaint"
    channel: str = "phone"
    category: str | None = None
    matter: str | None = None
    matter_name: str | None = None
    classified_by: str = "none"
    description: str
    complainant: Complainant
    received_at: dt.datetime

    status: Status = "received"
    unit: str | None = None
    unit_level: RouteLevel | None = None
    matter_level: Literal["district", "street"] | None = None
    dispatch_seq: int = 0
    dispatched_at: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    ack_due: dt.datetime | None = None
    due: dt.datetime | None = None
    limit_days: int | None = None
    overdue: bool = False
    overdue_since: dt.datetime | None = None
    ack_late: bool = False
    escalated: bool = False

    returns: int = 0
    handovers: int = 0
    units_seen: list[str] = Field(default_factory=list)
    extension: Extension | None = None
    extensions: list[Extension] = Field(default_factory=list)
    outcome: str | None = None
    verdict: Verdict | None = None
    satisfaction: int | None = None
    case_ids: list[str] = Field(default_factory=list)
    leads: list[str] = Field(default_factory=list)
    duplicate_of: str | None = Field(
        default=None, description="the first complaint of the same problem at the same place"
    )
    duplicates: list[str] = Field(
        default_factory=list, description="later complaints linked to this one as duplicates"
    )
    applied_updates: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def record(self, entry: TimelineEntry) -> TimelineEntry:
        self.timeline.append(entry)
        self.updated_at = entry.at
        return entry


# ------------------------------------------------------------------ checks


def _holder(c: Complaint, unit: str, action: str) -> None:
    if c.unit != unit:
        raise TransitionRefused(
            f"complaint {c.id} is held by {c.unit}, not {unit}: only the holder can {action}"
        )


def _status(c: Complaint, allowed: tuple[Status, ...], action: str) -> None:
    if c.status not in allowed:
        raise TransitionRefused(
            f"complaint {c.id} is {c.status}; {action} needs it to be {' or '.join(allowed)}"
        )


def _text(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise TransitionRefused(f"{what} is required")
    return value.strip()


# ------------------------------------------------------------------ transitions


def dispatch(
    c: Complaint,
    target: Route,
    *,
    by: str,
    at: dt.datetime,
    ack_due: dt.datetime,
    handover: bool = True,
) -> TimelineEntry:
    """派单 (first dispatch: ``routed``) or 重新派单 (``rerouted``, a hand-over unless
    ``handover`` is false: a re-route after 12345 re-classified the order is none)."""
    _status(c, ("received", "dispatched", "acknowledged"), "dispatch")
    first = c.status == "received"
    if not first and target.unit == c.unit:
        raise TransitionRefused(f"complaint {c.id} is already with {target.unit}")
    previous = c.unit
    c.unit, c.unit_level = target.unit, target.level
    if target.matter_level is not None:
        c.matter_level = target.matter_level
    c.status = "dispatched"
    c.dispatch_seq += 1
    c.dispatched_at = at
    c.acknowledged_at = None
    c.ack_due = ack_due
    c.ack_late = False
    if handover and not first and target.level != "triage":
        c.handovers += 1  # passing through the triage queue is not a hand-over
    if target.unit not in c.units_seen:
        c.units_seen.append(target.unit)
    return c.record(
        TimelineEntry(
            verb="routed" if first else "rerouted",
            at=at,
            by=by,
            unit=target.unit,
            reason=target.reason,
            detail={"from_unit": previous, "level": target.level, "street": target.street},
        )
    )


def acknowledge(c: Complaint, *, unit: str, by: str, at: dt.datetime) -> TimelineEntry:
    """签收."""
    _status(c, ("dispatched",), "acknowledge")
    _holder(c, unit, "acknowledge")
    c.status = "acknowledged"
    c.acknowledged_at = at
    late = c.ack_due is not None and at > c.ack_due
    return c.record(
        TimelineEntry(verb="acknowledged", at=at, by=by, unit=unit, detail={"late": late})
    )


def return_order(
    c: Complaint, *, unit: str, by: str, at: dt.datetime, reason: str | None
) -> TimelineEntry:
    """退单 with a reason; the caller re-dispatches (:func:`dispatch`) in the same step."""
    _status(c, ("dispatched", "acknowledged"), "return")
    _holder(c, unit, "return it")
    if c.unit_level == "triage":
        raise TransitionRefused(
            f"{unit} is the triage queue: it re-dispatches (reroute) instead of returning"
        )
    text = _text(reason, "a reason for the return (退单理由)")
    c.returns += 1
    c.status = "dispatched"
    return c.record(
        TimelineEntry(
            verb="returned", at=at, by=by, unit=unit, reason=text, detail={"returns": c.returns}
        )
    )


def request_extension(
    c: Complaint,
    *,
    unit: str,
    by: str,
    at: dt.datetime,
    days: int,
    reason: str | None,
    max_days: int,
) -> TimelineEntry:
    """延期申请: only while in progress, before the deadline, one at a time."""
    _status(c, ("acknowledged",), "an extension request")
    _holder(c, unit, "request an extension")
    text = _text(reason, "a reason for the extension (延期理由)")
    if c.extension is not None and c.extension.status == "pending":
        raise TransitionRefused(f"complaint {c.id} already has an extension request pending")
    if c.due is not None and at >= c.due:
        raise TransitionRefused(
            f"the deadline {c.due.isoformat()} has passed: an extension must be requested before it"
        )
    if not 1 <= days <= max_days:
        raise TransitionRefused(f"an extension is 1 to {max_days} working days, not {days}")
    c.extension = Extension(
        status="pending",
        days=days,
        reason=text,
        requested_by=by,
        requested_unit=unit,
        requested_at=at,
    )
    return c.record(
        TimelineEntry(
            verb="extension_requested", at=at, by=by, unit=unit, reason=text, detail={"days": days}
        )
    )


def decide_extension(
    c: Complaint,
    *,
    unit: str,
    by: str,
    at: dt.datetime,
    approved: bool,
    note: str | None,
    new_due: dt.datetime | None,
    allowed_deciders: tuple[str, ...],
) -> TimelineEntry:
    """延期审批 by the supervising bureau; an approval moves the deadline to ``new_due``."""
    if c.extension is None or c.extension.status != "pending":
        raise TransitionRefused(f"complaint {c.id} has no extension request pending")
    if unit not in allowed_deciders:
        raise TransitionRefused(
            f"{unit} cannot decide this extension: it is for {' or '.join(allowed_deciders)}"
        )
    ext = c.extension
    ext.status = "approved" if approved else "refused"
    ext.decided_by, ext.decided_unit, ext.decided_at, ext.note = by, unit, at, note
    previous_due = c.due
    if approved and new_due is not None:
        c.due = new_due
        if c.overdue and at < new_due:
            c.overdue, c.overdue_since = False, None
    c.extensions.append(ext.model_copy())
    return c.record(
        TimelineEntry(
            verb="extension_decided",
            at=at,
            by=by,
            unit=unit,
            reason=note,
            detail={
                "approved": approved,
                "days": ext.days,
                "previous_due": previous_due,
                "due": c.due,
            },
        )
    )


def reclassify(
    c: Complaint,
    *,
    matter: str,
    matter_name: str | None,
    classified_by: str,
    category: str | None,
    by: str,
    at: dt.datetime,
    due: dt.datetime,
    limit_days: int,
) -> TimelineEntry | None:
    """12345 改变分类: the new matter and its recomputed 办结 deadline (None: same matter).

    The caller re-routes by the new matter; returns, hand-overs and the timeline are kept.
    """
    _status(c, ("received", "dispatched", "acknowledged"), "re-classification")
    if matter == c.matter:
        return None
    previous, previous_due = c.matter, c.due
    c.matter, c.matter_name, c.classified_by = matter, matter_name, classified_by
    c.category = category
    c.due, c.limit_days = due, limit_days
    if c.overdue and at < due:
        c.overdue, c.overdue_since = False, None
    return c.record(
        TimelineEntry(
            verb="reclassified",
            at=at,
            by=by,
            detail={
                "from_matter": previous,
                "to_matter": matter,
                "classified_by": classified_by,
                "previous_due": previous_due,
                "due": due,
                "limit_days": limit_days,
            },
        )
    )


def resolve(
    c: Complaint,
    *,
    unit: str,
    by: str,
    at: dt.datetime,
    outcome: str | None,
    verdict: Verdict | None,
) -> TimelineEntry:
    """办结 with the outcome; ``violation_confirmed`` starts the 应立尽立 watch."""
    _status(c, ("acknowledged",), "resolve")
    _holder(c, unit, "resolve it")
    c.outcome = _text(outcome, "the outcome (办理结果)")
    c.verdict = verdict
    c.status = "resolved"
    c.resolved_at = at
    if c.extension is not None and c.extension.status == "pending":
        c.extension.status = "refused"
        c.extension.note = "办结时撤回"
    late = c.due is not None and at > c.due
    return c.record(
        TimelineEntry(
            verb="resolved",
            at=at,
            by=by,
            unit=unit,
            reason=c.outcome,
            detail={"verdict": verdict, "late": late},
        )
    )


def link_duplicate(
    c: Complaint, *, original: str, by: str, at: dt.datetime, detail: dict[str, Any]
) -> TimelineEntry:
    """重复件: ``c`` repeats complaint ``original`` (linked once, never to itself)."""
    if original == c.id:
        raise TransitionRefused(f"complaint {c.id} cannot duplicate itself")
    if c.duplicate_of is not None:
        raise TransitionRefused(f"complaint {c.id} is already a duplicate of {c.duplicate_of}")
    c.duplicate_of = original
    return c.record(
        TimelineEntry(
            verb="duplicate_linked", at=at, by=by, detail={"original": original, **detail}
        )
    )


def note_duplicate(
    c: Complaint, *, duplicate: str, by: str, at: dt.datetime
) -> TimelineEntry | None:
    """The original learns of a later report of its problem (None: already noted)."""
    if duplicate in c.duplicates or duplicate == c.id:
        return None
    c.duplicates.append(duplicate)
    return c.record(
        TimelineEntry(verb="duplicate_linked", at=at, by=by, detail={"duplicate": duplicate})
    )


def rate(c: Complaint, *, by: str, at: dt.datetime, satisfaction: int) -> TimelineEntry:
    """回访: the citizen's satisfaction closes the order."""
    _status(c, ("resolved",), "a rating")
    if not 1 <= satisfaction <= 5:
        raise TransitionRefused(f"satisfaction is 1 to 5, not {satisfaction}")
    c.satisfaction = satisfaction
    c.status = "closed"
    c.closed_at = at
    return c.record(
        TimelineEntry(
            verb="rated", at=at, by=by, unit=c.unit, detail={"satisfaction": satisfaction}
        )
    )


def mark_overdue(
    c: Complaint, *, stage: Literal["acknowledge", "resolve"], by: str, at: dt.datetime
) -> TimelineEntry | None:
    """超时: the ack or resolve deadline passed with the step not done (None: nothing to do).

    A late 签收 is kept as ``ack_overdue`` (timeline and reminder only): ``overdue`` means
    the resolution deadline passed, which is what the supervisors count.
    """
    if stage == "acknowledge":
        if c.status != "dispatched" or c.ack_due is None or at < c.ack_due or c.ack_late:
            return None
        c.ack_late = True
        due = c.ack_due
    else:
        if not c.is_open or c.due is None or at < c.due or c.overdue:
            return None
        c.overdue = True
        c.overdue_since = c.due
        due = c.due
    verb = "ack_overdue" if stage == "acknowledge" else "overdue"
    return c.record(
        TimelineEntry(verb=verb, at=at, by=by, unit=c.unit, detail={"stage": stage, "due": due})
    )


def escalate(c: Complaint, *, by: str, at: dt.datetime, days_overdue: int) -> TimelineEntry | None:
    """通报 once (None when already escalated or no longer open and overdue)."""
    if c.escalated or not c.is_open or not c.overdue:
        return None
    c.escalated = True
    return c.record(
        TimelineEntry(
            verb="escalated",
            at=at,
            by=by,
            unit=c.unit,
            detail={"days_overdue": days_overdue, "due": c.due},
        )
    )
