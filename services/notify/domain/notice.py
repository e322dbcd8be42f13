"""Notices (通知文书) to enforcement units: ids, document numbers (文号), status, deadlines.

Pure rules only: no I/O. A notice is identified by its request's idempotency key, so a
request delivered any number of times is one notice; its document number comes from a
per-issuer, per-kind, per-year sequence, e.g. ``静司督〔2026〕17号``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

from shared.contracts import NOTICE_TITLES, NoticeKind, notice_id
from shared.workcalendar import CST, OfficeHours

__all__ = ["notice_id"]


class Channel(StrEnum):
    """Delivery channels; the in-app inbox always applies."""

    INBOX = "inbox"
    EMAIL = "email"
    WEBHOOK = "webhook"
    SMS = "sms"


EXTERNAL_CHANNELS = (Channel.EMAIL, Channel.WEBHOOK, Channel.SMS)

DeliveryStatus = Literal["pending", "sent", "failed", "skipped"]
NoticeStatus = Literal["pending", "sent", "failed", "acknowledged", "escalated"]

KIND_ABBREVIATIONS: dict[NoticeKind, str] = {
    NoticeKind.REMINDER: "催",
    NoticeKind.SUPERVISION_LETTER: "督",
    NoticeKind.SUPERVISION_NOTICE: "监",
    NoticeKind.RECTIFICATION: "改",
    NoticeKind.RECOMMENDATION: "建",
    NoticeKind.DECISION: "决",
    NoticeKind.FILING_REMINDER: "备",
    NoticeKind.ESCALATION: "通",
    NoticeKind.TRANSFER: "移",
}
"""The kind's character in the document number (文号中的文种代字)."""


def escalation_key(original_notice_id: str) -> str:
    """Idempotency key of the one escalation notice an unacknowledged notice may cause."""
    return f"notify:escalation:{original_notice_id}"


def title_of(kind: NoticeKind) -> str:
    return NOTICE_TITLES[kind]


def document_year(issued_at: dt.datetime) -> int:
    """The year of the document number is the year in China Standard Time."""
    return issued_at.astimezone(CST).year


def counter_key(issuer_prefix: str, kind: NoticeKind, year: int) -> str:
    """One sequence per issuer (district), kind and year: ``静司督:2026``."""
    return f"{issuer_prefix}{KIND_ABBREVIATIONS[kind]}:{year}"


def document_number(issuer_prefix: str, kind: NoticeKind, year: int, sequence: int) -> str:
    """文号: issuer prefix (e.g. 静司) + kind character + 〔year〕 + sequence + 号."""
    if sequence < 1:
        raise ValueError("document sequence numbers start at 1")
    return f"{issuer_prefix}{KIND_ABBREVIATIONS[kind]}〔{year}〕{sequence}号"


def acknowledgement_deadline(
    created_at: dt.datetime,
    requested_deadline: dt.datetime | None,
    working_days: int,
    hours: OfficeHours | None = None,
) -> dt.datetime:
    """签收期限: the request's deadline when still ahead; otherwise close of business
    ``working_days`` working days after the notice (a reminder about an already overdue
    complaint must not escalate the moment it is issued)."""
    if requested_deadline is not None and requested_deadline > created_at:
        return requested_deadline
    return (hours or OfficeHours()).end_of_working_day(created_at, working_days)


def backoff_s(attempt: int, first_s: float, max_s: float) -> float:
    """Wait before retry number ``attempt`` (1 = after the first failure): doubling, capped."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    return float(min(max_s, first_s * 2 ** (attempt - 1)))


def derive_status(
    channels: Mapping[str, str], *, acknowledged: bool, escalated: bool
) -> NoticeStatus:
    """One word for the notice: 签收 wins, then escalation, then how delivery went."""
    if acknowledged:
        return "acknowledged"
    if escalated:
        return "escalated"
    states = set(channels.values())
    if "failed" in states:
        return "failed"
    if "pending" in states:
        return "pending"
    return "sent"


def cn_date(when: dt.datetime | dt.date) -> str:
    """A date as official documents write it (GB/T 9704): ``2026年3月5日`` in CST."""
    day = when.astimezone(CST).date() if isinstance(when, dt.datetime) else when
    return f"{day.year}年{day.month}月{day.day}日"


def cn_datetime(when: dt.datetime) -> str:
    """``2026年3月5日18时`` (``18时30分`` when not on the hour), CST."""
    local = when.astimezone(CST)
    clock = f"{local.hour}时" + (f"{local.minute}分" if local.minute else "")
    return cn_date(local) + clock
