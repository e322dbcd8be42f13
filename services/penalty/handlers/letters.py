"""备案审查: the bureau's answer to a filing is a letter to the unit (审查通过通知, 监督建议书 with
a reply due, 监督决定书), each sent as a notice; the unit replies (回复), and a 监督建议书 left
unanswered past its due date is escalated (通报 to the unit, copied above, and a lead).
"""

from __future__ import annotations

from services.penalty import storage
from services.penalty.domain.filing import REVIEW_STATUS, ReviewOutcome, review_refusal
from services.penalty.domain.records import Filing, Letter, LetterKind, Reply
from services.penalty.handlers.steps import (
    RAISED_BY,
    REPLY_DUE,
    FilingSteps,
    reply_due_timer,
    snapshot,
)
from shared.api import Conflict, existing
from shared.city import supervising_unit
from shared.clock import utc
from shared.contracts import LeadKind, NoticeKind, SupervisionLead
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST, end_of_day_after

LETTER_NOTICE: dict[LetterKind, NoticeKind] = {
    "acceptance": NoticeKind.SUPERVISION_NOTICE,
    "recommendation": NoticeKind.RECOMMENDATION,
    "decision": NoticeKind.DECISION,
}
LETTER_KIND: dict[ReviewOutcome, LetterKind] = {
    "accept": "acceptance",
    "recommendation": "recommendation",
    "decision": "decision",
}
LETTER_TITLE = {
    "acceptance": "顶格处罚备案审查通过通知",
    "recommendation": "行政执法监督建议书",
    "decision": "行政执法监督决定书",
}


class Letters(FilingSteps):
    """审查结论, the letters they issue, the unit's replies and overdue escalation."""

    async def review(
        self, uow: UnitOfWork, case_id: str, outcome: ReviewOutcome, by: str, opinion: str
    ) -> tuple[Filing, Letter]:
        """备案审查结论: acceptance, 监督建议书 (reply due) or 监督决定书; each is a notice."""
        filing = await existing(storage.filings(uow), case_id, "filing of case")
        refusal = review_refusal(filing.status, outcome)
        if refusal:
            raise Conflict(refusal)
        kind = LETTER_KIND[outcome]
        seq = await storage.count_letters(uow, case_id) + 1
        letter_id = f"{case_id}-L{seq}"
        now = uow.now()
        reply_due = (
            end_of_day_after(now, self.settings.recommendation_reply_days)
            if kind == "recommendation"
            else None
        )
        letter = Letter(
            id=letter_id,
            case_id=case_id,
            district=filing.district,
            unit=filing.unit,
            kind=kind,
            title=LETTER_TITLE[kind],
            issued_by=by,
            issued_at=now,
            opinion=opinion,
            reply_due=reply_due,
            status="awaiting_reply" if reply_due else "issued",
            reply=None,
        )
        storage.letters(uow).add(letter)
        await self.notify_unit(
            uow,
            filing,
            f"penalty:letter:{letter_id}",
            LETTER_NOTICE[kind],
            f"{LETTER_TITLE[kind]}（案件 {case_id}）：{opinion}"[:2000],
            {"letter_id": letter_id, "outcome": outcome, "issued_by": by},
            deadline=reply_due,
        )
        if reply_due is not None:
            await uow.schedule(
                reply_due_timer(letter_id),
                REPLY_DUE,
                reply_due,
                {"letter_id": letter_id},
                subject=f"filing/{case_id}",
            )
        filing.review_status = REVIEW_STATUS[outcome]
        filing.letters.append(letter_id)
        self.save(uow, filing)
        await self.emit(
            uow, filing, "letter_issued", {"at": now, "by": by, "letter": snapshot(letter)}
        )
        return filing, letter

    async def record_reply(
        self, uow: UnitOfWork, letter_id: str, by: str, content: str
    ) -> tuple[Filing, Letter]:
        """The unit answers a letter (回复); a late answer is recorded as late."""
        letter = await existing(storage.letters(uow), letter_id, "letter")
        if letter.kind == "acceptance":
            raise Conflict("an acceptance notice needs no reply")
        if letter.reply is not None:
            raise Conflict(f"letter {letter_id} already answered")
        filing = await existing(storage.filings(uow), letter.case_id, "filing of case")
        if by != letter.unit:
            raise Conflict(f"letter {letter_id} is addressed to {letter.unit}, not {by}")
        now = uow.now()
        due = letter.reply_due
        late = due is not None and now > utc(due)
        letter.reply = Reply(by=by, content=content, at=now, late=late)
        letter.status = "replied"
        storage.letters(uow).put(letter)
        await uow.cancel(reply_due_timer(letter_id))
        if letter.kind == "recommendation":
            filing.review_status = "replied"
        self.save(uow, filing)
        await self.emit(
            uow, filing, "reply_recorded", {"at": now, "by": by, "letter": snapshot(letter)}
        )
        return filing, letter

    async def on_reply_due(self, timer: Document, uow: UnitOfWork) -> None:
        """A 监督建议书 left unanswered past its due date escalates (通报 + overdue lead)."""
        letter_id = timer["payload"]["letter_id"]
        letter = await storage.letters(uow).get(letter_id)
        if letter is None or letter.reply is not None or letter.status == "escalated":
            return
        if letter.reply_due is None:
            return  # only a letter with a reply due has this timer
        filing = await storage.filings(uow).get(letter.case_id)
        if filing is None:
            return
        now = uow.now()
        letter.status = "escalated"
        letter.escalated_at = now
        storage.letters(uow).put(letter)
        bureau = supervising_unit(filing.unit)
        above = supervising_unit(bureau) if bureau != filing.unit else bureau
        reason = (
            f"{filing.unit} 未在 {utc(letter.reply_due).astimezone(CST).date()} 前"
            f"回复监督建议书 {letter_id}（案件 {filing.id}）"
        )
        await self.notify_unit(
            uow,
            filing,
            f"penalty:escalation:{letter_id}",
            NoticeKind.ESCALATION,
            f"{reason}，予以通报。",
            {"letter_id": letter_id, "copy_to": above},
        )
        await self.raise_lead(
            uow,
            filing,
            LeadKind.OVERDUE,
            SupervisionLead.make_id(LeadKind.OVERDUE, letter_id),
            reason,
            {"letter_id": letter_id, "reply_due": letter.reply_due},
        )
        if filing.review_status == "recommendation_issued":
            filing.review_status = "escalated"
        self.save(uow, filing)
        await self.emit(
            uow,
            filing,
            "letter_issued",
            {"at": now, "by": RAISED_BY, "escalation": True, "letter": snapshot(letter)},
        )
