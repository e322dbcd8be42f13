"""Supervision letters (督办函、监督建议书、监督决定书、移送函): issuing one from the API, its
书面回复, and the reply deadline.

An unanswered letter causes one 通报 to the level above its issuer (the city bureau for a
district's letter) and, for an enforcement unit, an overdue supervision lead.
"""

from __future__ import annotations

import uuid

import structlog
from pydantic_core import to_jsonable_python

from services.notify import storage
from services.notify.domain.directory import DirectoryEntry
from services.notify.domain.letters import Letter
from services.notify.domain.notice import cn_datetime, notice_id
from services.notify.handlers.issuing import REQUESTED_BY, NoticeIssuer, reply_timer
from shared.api import Conflict, Forbidden, NotFound
from shared.city import supervising_unit
from shared.clock import utc
from shared.contracts import (
    LeadKind,
    NoticeKind,
    NoticeSubject,
    NotificationRequest,
    SupervisionLead,
)
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

REQUESTED_BY_API = "notify-api"


def letter_escalation_key(nid: str) -> str:
    """Idempotency key of the one 通报 an unanswered letter may cause."""
    return f"notify:letter-escalation:{nid}"


class LetterReplies(NoticeIssuer):
    """Letters a supervisor issues, the replies they owe, and what an overdue one causes."""

    async def issue_letter(
        self,
        uow: UnitOfWork,
        *,
        kind: NoticeKind,
        recipient: DirectoryEntry,
        bureau: str,
        by: str,
        subject_type: NoticeSubject,
        subject_id: str,
        summary: str,
        items: list[str],
        reply_days: int | None,
        request_id: str | None,
    ) -> str:
        """A letter (``kind`` one of ``LETTER_KINDS``) signed by ``bureau``, asked for by
        ``by``, issued once per ``request_id``; the id of its notice."""
        key = f"letter:{bureau}:{request_id or uuid.uuid4().hex}"
        request = NotificationRequest(
            idempotency_key=key,
            kind=kind,
            recipient_unit=recipient.unit,
            district=recipient.district,
            subject_type=subject_type,
            subject_id=subject_id,
            summary=summary,
            context={"issued_by": bureau, "issued_by_person": by, "items": items},
            requested_by=REQUESTED_BY_API,
            reply_requested=True,
            reply_days=reply_days,
        )
        await self.issue(request, uow)
        return notice_id(key)

    async def record_reply(
        self, uow: UnitOfWork, nid: str, *, unit: str, by: str, content: str
    ) -> Letter:
        """书面回复 to a letter (the recipient; a 移送函's feedback: its issuing bureau)."""
        letters = storage.letters(uow)
        letter = await letters.get(nid)
        if letter is None:
            raise NotFound(f"letter {nid} does not exist")
        if not letter.may_reply(unit):
            raise Forbidden(f"letter {nid} is answered by {letter.recipient_unit}, not {unit}")
        now = uow.now()
        if not letter.record_reply(unit=unit, by=by, content=content, at=now):
            raise Conflict(f"letter {nid} was already answered")
        letters.put(letter)
        await uow.cancel(reply_timer(nid))
        notice = await storage.notices(uow).get(nid)
        if notice is not None:
            reply = letter.reply.model_dump() if letter.reply else {}
            await self.emit(uow, "replied", notice, {**reply, "reply_due": letter.reply_due})
        return letter

    async def on_letter_reply_due(self, timer: Document, uow: UnitOfWork) -> None:
        """Reply deadline passed unanswered: one 通报 to the level above the issuer (the city
        bureau for a district's letter) and, for an enforcement unit, an overdue lead."""
        nid = str(timer.get("payload", {}).get("notice_id", ""))
        letters = storage.letters(uow)
        letter = await letters.get(nid)
        notice = await storage.notices(uow).get(nid)
        if letter is None or notice is None:
            log.warning("reply timer for a missing letter", notice=nid)
            return
        if not letter.needs_escalation():
            return
        to_unit = supervising_unit(letter.issuer)
        due = cn_datetime(utc(letter.reply_due))
        reason = f"{letter.recipient_name}未在{due}前回复《{letter.title}》（{letter.doc_number}）"
        esc_id, _ = await self.issue_escalation(
            uow, letter_escalation_key(nid), to_unit, notice, overdue_letter=letter
        )
        now = uow.now()
        letter.escalate(to=to_unit, escalation_notice_id=esc_id, at=now)
        letters.put(letter)
        if letter.kind is not NoticeKind.TRANSFER:
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=SupervisionLead.make_id(LeadKind.OVERDUE, "letter", nid),
                    kind=LeadKind.OVERDUE,
                    district=letter.district,
                    unit=letter.recipient_unit,
                    subject_type=letter.subject_type,
                    subject_id=letter.subject_id,
                    summary=reason,
                    evidence={
                        "letter_id": nid,
                        "doc_number": letter.doc_number,
                        "reply_due": to_jsonable_python(letter.reply_due),
                    },
                    raised_at=now,
                    raised_by=REQUESTED_BY,
                )
            )
        await self.emit(
            uow,
            "reply_overdue",
            notice,
            {"to": to_unit, "at": now, "escalation_notice_id": esc_id, "reason": reason},
        )
