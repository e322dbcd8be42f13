"""The notify service's aggregates: a notice, a delivery job, a document-number counter.

Pydantic models with the rules that change them (pure: no I/O). ``services.notify.storage``
maps them to the MongoDB documents (``id`` ↔ ``_id``, the fields otherwise as stored), so
the read APIs and existing data see the same shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.notify.domain.notice import (
    Channel,
    DeliveryStatus,
    NoticeStatus,
    derive_status,
)
from shared.clock import utc
from shared.contracts import NoticeKind, NoticeSubject

Outcome = Literal["sent", "retry", "failed"]
"""What one delivery attempt came to: delivered, try again later, or given up."""

MAX_HISTORY = 50
"""Attempts a delivery keeps in its history (the newest)."""


class ChannelState(BaseModel):
    """How one channel of a notice stands (kept on the notice, shown by the API)."""

    model_config = ConfigDict(extra="ignore")

    status: DeliveryStatus = Field(description="pending / sent / failed / skipped")
    target: str | None = None
    attempts: int | None = None
    reason: str | None = Field(default=None, description="why the channel was skipped")
    error: str | None = None
    sent_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None

    @classmethod
    def inbox(cls, unit: str, at: dt.datetime) -> ChannelState:
        """The in-app inbox holds the notice the moment it is issued."""
        return cls(status="sent", target=unit, sent_at=at)

    @classmethod
    def skipped(cls, target: str | None, reason: str) -> ChannelState:
        return cls(status="skipped", target=target, reason=reason)

    @classmethod
    def queued(cls, target: str) -> ChannelState:
        return cls(status="pending", target=target, attempts=0)

    @classmethod
    def after(
        cls,
        outcome: Outcome,
        *,
        target: str,
        attempts: int,
        at: dt.datetime,
        error: str | None = None,
    ) -> ChannelState:
        """The channel once an attempt's outcome is known."""
        if outcome == "sent":
            return cls(status="sent", target=target, attempts=attempts, sent_at=at)
        if outcome == "failed":
            return cls(status="failed", target=target, attempts=attempts, error=error, failed_at=at)
        return cls(status="pending", target=target, attempts=attempts, error=error)


class Notice(BaseModel):
    """A notice (通知文书) to a unit (``id`` from the request's idempotency key)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    idempotency_key: str
    kind: NoticeKind
    title: str
    heading: str
    doc_number: str
    year: int
    sequence: int
    issuer: str
    issuer_name: str
    recipient_unit: str
    recipient_name: str
    district: str
    subject_type: NoticeSubject
    subject_id: str
    summary: str
    context: dict[str, Any] = Field(default_factory=dict)
    deadline: dt.datetime | None = None
    ack_deadline: dt.datetime
    text: str
    channels: dict[str, ChannelState] = Field(default_factory=dict)
    requested_by: str
    request_event_id: str | None = None
    escalation_of: str | None = None
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    ack_note: str | None = None
    acknowledged_late: bool | None = None
    escalated_at: dt.datetime | None = None
    escalated_to: str | None = None
    escalation_notice_id: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    status: NoticeStatus = "pending"

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None

    def channel_states(self) -> dict[str, str]:
        return {channel: state.status for channel, state in self.channels.items()}

    def external_channels(self) -> list[Channel]:
        return [Channel(c) for c in self.channels if c != Channel.INBOX.value]

    def derived_status(self) -> NoticeStatus:
        return derive_status(
            self.channel_states(), acknowledged=self.acknowledged, escalated=self.escalated
        )

    def touch(self, at: dt.datetime) -> None:
        """After a change: the status follows from the rest; ``updated_at`` moves."""
        self.status = self.derived_status()
        self.updated_at = at

    def set_channel(self, channel: str, state: ChannelState, at: dt.datetime) -> None:
        self.channels[channel] = state
        self.touch(at)

    def acknowledge(self, *, by: str, note: str | None, at: dt.datetime) -> bool:
        """签收 (once: False when it already was); late when after the 签收期限."""
        if self.acknowledged:
            return False
        self.acknowledged_at = at
        self.acknowledged_by = by
        self.ack_note = note
        self.acknowledged_late = utc(at) > utc(self.ack_deadline)
        self.touch(at)
        return True

    def needs_escalation(self) -> bool:
        return not self.acknowledged and not self.escalated

    def escalate(self, *, to: str, escalation_notice_id: str, at: dt.datetime) -> None:
        self.escalated_at = at
        self.escalated_to = to
        self.escalation_notice_id = escalation_notice_id
        self.touch(at)


class Attempt(BaseModel):
    """One delivery attempt in a delivery's history."""

    model_config = ConfigDict(extra="ignore")

    attempt: int
    at: dt.datetime
    outcome: Outcome
    error: str | None = None


class Delivery(BaseModel):
    """The delivery job of one notice on one external channel (``<notice>:<channel>``),
    claimed by lease by one delivery worker at a time."""

    model_config = ConfigDict(extra="ignore")

    id: str
    notice_id: str
    channel: Channel
    unit: str
    target: str
    status: DeliveryStatus = "pending"
    attempts: int = 0
    resends: int = 0
    next_attempt_at: dt.datetime
    claimed_by: str | None = None
    claim_until: dt.datetime | None = None
    claim_token: str | None = None
    last_error: str | None = None
    sent_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    resent_at: dt.datetime | None = None
    history: list[Attempt] = Field(default_factory=list)

    def held_by(self, token: str) -> bool:
        """Our claim still holds: the job is pending and claimed with ``token``."""
        return self.status == "pending" and self.claim_token == token

    def being_attempted(self, now: dt.datetime) -> bool:
        """A worker holds an unexpired lease on it right now."""
        return (
            self.status == "pending"
            and self.claim_until is not None
            and utc(self.claim_until) > utc(now)
        )

    def _release(self) -> None:
        self.claimed_by = None
        self.claim_until = None
        self.claim_token = None

    def give_back(self) -> None:
        """Release the claim unused: the attempt counted when it was claimed never started."""
        self.attempts = max(0, self.attempts - 1)
        self._release()

    def settle(
        self,
        outcome: Outcome,
        *,
        at: dt.datetime,
        wall: dt.datetime,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
    ) -> None:
        """Record the outcome of the current attempt and release the claim (``at``: business
        time of the outcome; ``wall``: real time, for the history and the next attempt)."""
        self.last_error = error
        if outcome == "sent":
            self.status = "sent"
            self.sent_at = at
        elif outcome == "failed":
            self.status = "failed"
            self.failed_at = at
        else:
            self.next_attempt_at = retry_at or wall
        self._release()
        attempt = Attempt(attempt=self.attempts, at=wall, outcome=outcome, error=error)
        self.history = [*self.history, attempt][-MAX_HISTORY:]

    def requeue(self, *, at: dt.datetime, wall: dt.datetime) -> None:
        """Resend: pending again with fresh attempts, due now (``wall``)."""
        self.status = "pending"
        self.attempts = 0
        self.next_attempt_at = wall
        self._release()
        self.last_error = None
        self.resent_at = at
        self.resends += 1


class Counter(BaseModel):
    """A document-number sequence (one per issuer, kind and year)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    seq: int = 0

    def next(self) -> int:
        self.seq += 1
        return self.seq
