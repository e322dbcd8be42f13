"""What the notify API takes and answers: notices, deliveries, supervision letters, units."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.notify.domain.aggregates import Attempt, ChannelState
from services.notify.domain.letters import LetterReply, LetterStatus
from services.notify.domain.notice import Channel, NoticeStatus
from shared.api import Out
from shared.contracts import NoticeKind, NoticeSubject


class NoticeSummary(Out):
    id: str
    doc_number: str = Field(description="文号, e.g. 静司督〔2026〕17号")
    kind: NoticeKind
    title: str
    heading: str
    issuer: str
    issuer_name: str
    recipient_unit: str
    recipient_name: str
    district: str
    subject_type: str
    subject_id: str
    summary: str
    status: NoticeStatus
    deadline: dt.datetime | None = None
    ack_deadline: dt.datetime = Field(description="签收期限")
    acknowledged_at: dt.datetime | None = None
    escalated_at: dt.datetime | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class NoticeOut(NoticeSummary):
    text: str = Field(description="the rendered notice (公文正文)")
    idempotency_key: str
    requested_by: str
    channels: dict[str, ChannelState]
    acknowledged_by: str | None = None
    acknowledged_late: bool | None = None
    ack_note: str | None = None
    escalated_to: str | None = None
    escalation_notice_id: str | None = None
    escalation_of: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class DeliveryOut(BaseModel):
    """Delivery status of one channel of one notice."""

    model_config = ConfigDict(extra="ignore")

    channel: Channel
    status: str = Field(description="pending / sent / failed / skipped")
    target: str | None = None
    attempts: int = 0
    resends: int = 0
    reason: str | None = None
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    history: list[Attempt] = Field(default_factory=list)


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="the token's unit (default)"
    )
    by: str | None = Field(
        default=None, min_length=1, max_length=100, description="officer (签收人)"
    )
    note: str | None = Field(default=None, max_length=2000)


class ResendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] | None = Field(
        default=None, max_length=4, description="default: every external channel"
    )


class LetterIn(BaseModel):
    """A supervision letter (督办函、监督建议书、监督决定书、移送函) about any subject."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: NoticeKind = Field(
        description="supervision_letter 督办函 / recommendation 监督建议书 / "
        "decision 监督决定书 / transfer 移送函"
    )
    recipient_unit: str = Field(min_length=1, max_length=100)
    subject_type: NoticeSubject = Field(description="lead / complaint / review / filing …")
    subject_id: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=2000, description="事由")
    items: list[str] = Field(default_factory=list, max_length=30, description="问题清单")
    reply_days: int | None = Field(
        default=None, ge=1, le=90, description="reply window; default: the kind's (settings)"
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the client's id for this letter: repeating a request issues it once",
    )


class LetterOut(Out):
    id: str = Field(description="the letter's notice id")
    kind: NoticeKind
    title: str
    doc_number: str
    issuer: str
    issuer_name: str
    issued_by: str
    recipient_unit: str
    recipient_name: str
    district: str
    subject_type: str
    subject_id: str
    summary: str
    issued_at: dt.datetime
    reply_days: int
    reply_due: dt.datetime = Field(description="回复期限")
    status: LetterStatus
    reply: LetterReply | None = None
    escalated_at: dt.datetime | None = None
    escalated_to: str | None = None
    escalation_notice_id: str | None = None


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    content: str = Field(min_length=1, max_length=5000, description="书面回复 / 处理情况反馈")
    unit: str | None = Field(default=None, min_length=1, max_length=100)
    by: str | None = Field(default=None, min_length=1, max_length=100)


class UnitOut(BaseModel):
    unit: str
    name: str
    district: str
    kind: str
    channels: list[Channel]
