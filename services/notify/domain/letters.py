"""Supervision letters (监督文书): 督办函、监督建议书、监督决定书、移送函 with a reply deadline.

A letter is a notice (rendered, numbered, delivered and 签收'd like any other) whose
recipient also owes a written reply (书面回复; for a 移送函 the 纪检监察机关's feedback on how
the matter was handled). The :class:`Letter` aggregate tracks that reply; its id is the
notice's id. Pure rules only: no I/O.

Reply windows count days as the law counts them: a window of up to seven days counts
working days (行政处罚法第八十五条: “二日”“三日”“五日”“七日”指工作日，不含法定节假日); a
longer one counts calendar days, and a last day that falls on a statutory holiday or a
weekend rolls to the next working day. The deadline is the close of business that day.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from services.notify.domain.aggregates import Notice
from shared.aggregate import Aggregate
from shared.clock import utc
from shared.contracts import NoticeKind, NoticeSubject
from shared.workcalendar import OfficeHours

LetterStatus = Literal["awaiting_reply", "replied", "escalated"]

WORKING_DAY_WINDOW = 7
"""Windows up to this many days count working days (行政处罚法第八十五条)."""


def reply_deadline(
    issued_at: dt.datetime, days: int, hours: OfficeHours | None = None
) -> dt.datetime:
    """Close of business on the last day of a ``days``-day reply window from ``issued_at``
    (the day of issue not counted)."""
    if days < 1:
        raise ValueError("a reply window is at least one day")
    office = hours or OfficeHours()
    if days <= WORKING_DAY_WINDOW:
        return office.end_of_working_day(issued_at, days)
    last = issued_at.astimezone(office.tz) + dt.timedelta(days=days)
    return office.end_of_working_day(last, 0)  # a day off rolls to the next working day


class LetterReply(BaseModel):
    """The recipient's written reply, or a bureau recording the 纪检监察机关's feedback."""

    unit: str = Field(description="the unit that replied, or the bureau that recorded it")
    by: str
    content: str
    at: dt.datetime
    late: bool


class Letter(Aggregate):
    """A supervision letter awaiting, or having received, its reply (id: the notice's)."""

    kind: NoticeKind
    title: str
    doc_number: str
    issuer: str
    issuer_name: str
    issued_by: str = Field(description="who asked for it (a supervisor, or a service)")
    recipient_unit: str
    recipient_name: str
    district: str
    subject_type: NoticeSubject
    subject_id: str
    summary: str
    issued_at: dt.datetime
    reply_days: int
    reply_due: dt.datetime
    status: LetterStatus = "awaiting_reply"
    reply: LetterReply | None = None
    escalated_at: dt.datetime | None = None
    escalated_to: str | None = None
    escalation_notice_id: str | None = None

    @classmethod
    def of_notice(
        cls, notice: Notice, *, issued_by: str, reply_days: int, reply_due: dt.datetime
    ) -> Letter:
        """The letter a notice asking for a reply opens: its id, number, parties, subject."""
        return cls(
            id=notice.id,
            kind=notice.kind,
            title=notice.title,
            doc_number=notice.doc_number,
            issuer=notice.issuer,
            issuer_name=notice.issuer_name,
            issued_by=issued_by,
            recipient_unit=notice.recipient_unit,
            recipient_name=notice.recipient_name,
            district=notice.district,
            subject_type=notice.subject_type,
            subject_id=notice.subject_id,
            summary=notice.summary,
            issued_at=notice.created_at,
            reply_days=reply_days,
            reply_due=reply_due,
        )

    def may_reply(self, unit: str) -> bool:
        """The recipient replies; a 移送函's feedback comes from outside the platform, so
        the issuing bureau records it."""
        return unit == self.recipient_unit or (
            self.kind is NoticeKind.TRANSFER and unit == self.issuer
        )

    def record_reply(self, *, unit: str, by: str, content: str, at: dt.datetime) -> bool:
        """The reply (once: False when one is already on file); late after the deadline.
        A reply after the escalation still closes the letter."""
        if self.reply is not None:
            return False
        late = utc(at) > utc(self.reply_due)
        self.reply = LetterReply(unit=unit, by=by, content=content, at=at, late=late)
        self.status = "replied"
        return True

    def needs_escalation(self) -> bool:
        return self.reply is None and self.escalated_at is None

    def escalate(self, *, to: str, escalation_notice_id: str, at: dt.datetime) -> None:
        self.status = "escalated"
        self.escalated_at = at
        self.escalated_to = to
        self.escalation_notice_id = escalation_notice_id
