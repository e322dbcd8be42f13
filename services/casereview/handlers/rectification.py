"""整改: a review with deductions orders the unit to rectify by a deadline (整改通知书); the
unit answers (整改报告), the supervisor accepts or sends it back for another round, and a
deadline passed without an answer is reported to the supervising bureau (通报) as a lead.

The case follows its rectification: its status is the rectification's last step."""

from __future__ import annotations

from typing import Any

from services.casereview import storage
from services.casereview.domain.commands import RectificationAnswer, RectificationVerdict
from services.casereview.domain.records import (
    Answer,
    Case,
    CaseStatus,
    Issue,
    Rectification,
    Review,
    Verdict,
)
from services.casereview.domain.rubric import RectificationKind, ScoreSheet
from services.casereview.handlers.case_log import RAISED_BY, load_case, record
from shared.api import Conflict, Forbidden, existing
from shared.city import supervising_unit
from shared.clock import utc
from shared.contracts import LeadKind, NoticeKind, NotificationRequest, SupervisionLead
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST, end_of_day_after

RECTIFICATION_DUE = "casereview.rectification_due"


def rectification_timer(rect_id: str) -> str:
    """The deadline timer of a rectification (one at a time: a new round replaces it)."""
    return f"casereview:rect-due:{rect_id}"


class Rectifications:
    """整改 orders and their rounds; each round gives the unit ``days`` calendar days."""

    def __init__(self, days: int) -> None:
        self.days = days

    async def require(
        self,
        uow: UnitOfWork,
        case: Case,
        review: Review,
        sheet: ScoreSheet,
        kind: RectificationKind,
    ) -> None:
        """整改: every file with deductions; a failing one is also escalated (REVIEW_FAILED)."""
        rect_id = f"rect:{review.id}"
        if await storage.rectifications(uow).get(rect_id):
            return  # one order per review, whatever happens
        now = uow.now()
        rect = Rectification(
            id=rect_id,
            case_id=case.id,
            review_id=review.id,
            campaign_id=review.campaign_id,
            unit=case.unit,
            district=case.district,
            kind=kind,
            grade=sheet.grade,
            score=sheet.total,
            vetoes=sheet.vetoes,
            issues=[
                Issue(item=line.item, text=line.text, points=line.points, comment=line.comment)
                for line in sheet.lines
            ],
            status="open",
            round=1,
            required_at=now,
            deadline=end_of_day_after(now, self.days),
            overdue=False,
        )
        storage.rectifications(uow).add(rect)
        await self._order(uow, rect)
        if kind == "failed":
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=SupervisionLead.make_id(LeadKind.REVIEW_FAILED, case.id, review.id),
                    kind=LeadKind.REVIEW_FAILED,
                    district=case.district,
                    unit=case.unit,
                    subject_type="case",
                    subject_id=case.id,
                    summary=f"案卷{case.id}评查{sheet.grade}（{sheet.total}分）",
                    evidence={
                        "review_id": review.id,
                        "vetoes": sheet.vetoes,
                        "defects": [issue.item for issue in rect.issues],
                        "rubric_version": sheet.rubric_version,
                    },
                    raised_at=now,
                    raised_by=RAISED_BY,
                )
            )
        await self._sync_case(
            uow,
            rect,
            "rectification_required",
            {"at": now, "kind": kind, "deadline": rect.deadline, "round": 1},
        )

    async def answer(
        self, uow: UnitOfWork, rect_id: str, answer: RectificationAnswer
    ) -> Rectification:
        """The unit reports its rectification; the deadline timer is cancelled."""
        rect = await existing(storage.rectifications(uow), rect_id, "rectification")
        if answer.unit != rect.unit:
            raise Forbidden(f"rectification {rect_id} is addressed to {rect.unit}")
        if rect.status not in ("open", "overdue"):
            raise Conflict(f"rectification {rect_id} is {rect.status}, not awaiting an answer")
        now = uow.now()
        late = now > utc(rect.deadline)
        rect.answers.append(Answer(**answer.model_dump(), at=now, round=rect.round, late=late))
        rect.status = "answered"
        rect.answered_at = now
        storage.rectifications(uow).put(rect)
        await uow.cancel(rectification_timer(rect_id))
        await self._sync_case(
            uow,
            rect,
            "rectification_answered",
            {"at": now, "by": answer.unit, "late": late, "round": rect.round},
        )
        return rect

    async def close(
        self, uow: UnitOfWork, rect_id: str, verdict: RectificationVerdict
    ) -> Rectification:
        """Accept (closed) or send back with a new deadline and a new notice."""
        rect = await existing(storage.rectifications(uow), rect_id, "rectification")
        if rect.status != "answered":
            raise Conflict(f"rectification {rect_id} is {rect.status}: nothing to judge")
        now = uow.now()
        rect.verdicts.append(Verdict(**verdict.model_dump(), at=now, round=rect.round))
        if verdict.accepted:
            rect.status = "closed"
            rect.closed_at = now
            storage.rectifications(uow).put(rect)
            await self._sync_case(
                uow,
                rect,
                "rectification_closed",
                {"at": now, "by": verdict.by, "comment": verdict.comment},
            )
            return rect
        rect.status = "open"
        rect.round += 1
        rect.deadline = end_of_day_after(now, self.days)
        storage.rectifications(uow).put(rect)
        await self._order(uow, rect)
        await self._sync_case(
            uow,
            rect,
            "rectification_required",
            {
                "at": now,
                "by": verdict.by,
                "reason": verdict.comment,
                "deadline": rect.deadline,
                "round": rect.round,
            },
        )
        return rect

    async def on_rectification_due(self, timer: Document, uow: UnitOfWork) -> None:
        """Deadline passed without an answer: 通报 to the supervising bureau, once per round."""
        payload = timer.get("payload") or {}
        rect = await storage.rectifications(uow).get(str(payload.get("rectification_id")))
        if rect is None or rect.status != "open" or payload.get("round") != rect.round:
            return
        now = uow.now()
        rect.status = "overdue"
        rect.overdue = True
        rect.overdue_at = now
        storage.rectifications(uow).put(rect)
        supervisor = supervising_unit(rect.unit)
        deadline = utc(rect.deadline).isoformat()
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"casereview:escalation:{rect.id}:{rect.round}",
                kind=NoticeKind.ESCALATION,
                recipient_unit=supervisor,
                district=rect.district,
                subject_type="rectification",
                subject_id=rect.id,
                summary=f"{rect.unit}未在期限内完成案卷{rect.case_id}的整改，予以通报",
                deadline=None,
                context={
                    "case_id": rect.case_id,
                    "unit": rect.unit,
                    "deadline": deadline,
                    "round": rect.round,
                },
                requested_by=RAISED_BY,
            )
        )
        await uow.raise_lead(
            SupervisionLead(
                lead_id=SupervisionLead.make_id(LeadKind.OVERDUE, rect.id, str(rect.round)),
                kind=LeadKind.OVERDUE,
                district=rect.district,
                unit=rect.unit,
                subject_type="rectification",
                subject_id=rect.id,
                summary=f"案卷{rect.case_id}整改逾期",
                evidence={"deadline": deadline, "round": rect.round},
                raised_at=now,
                raised_by=RAISED_BY,
            )
        )
        await self._sync_case(
            uow,
            rect,
            "rectification_overdue",
            {"at": now, "deadline": rect.deadline, "escalated_to": supervisor},
        )

    async def _order(self, uow: UnitOfWork, rect: Rectification) -> None:
        """One round: the 整改通知书 to the unit and the timer of its deadline. The notice's
        key carries the round, so a re-issue is a new notice; the timer replaces the last."""
        deadline = utc(rect.deadline)
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=f"casereview:rectification:{rect.id}:{rect.round}",
                kind=NoticeKind.RECTIFICATION,
                recipient_unit=rect.unit,
                district=rect.district,
                subject_type="rectification",
                subject_id=rect.id,
                summary=(
                    f"案卷{rect.case_id}经评查为{rect.grade}（{rect.score}分），"
                    f"请对评查反馈的{len(rect.issues)}项问题逐项整改，"
                    f"于{deadline.astimezone(CST):%Y年%m月%d日}前提交书面整改报告"
                ),
                deadline=deadline,
                context={
                    "case_id": rect.case_id,
                    "review_id": rect.review_id,
                    "kind": rect.kind,
                    "round": rect.round,
                    "vetoes": rect.vetoes,
                    "issues": [issue.model_dump() for issue in rect.issues],
                },
                requested_by=RAISED_BY,
            )
        )
        await uow.schedule(
            rectification_timer(rect.id),
            RECTIFICATION_DUE,
            deadline,
            {"rectification_id": rect.id, "round": rect.round},
            subject=f"rectification/{rect.id}",
        )

    async def _sync_case(
        self, uow: UnitOfWork, rect: Rectification, status: CaseStatus, change: dict[str, Any]
    ) -> None:
        """The case follows its rectification; the step is emitted under the status's name."""
        case = await load_case(uow, rect.case_id)
        case.status = status
        case.rectification_id = rect.id
        case.rectification_status = rect.status
        case.rectification_deadline = rect.deadline
        await record(uow, case, status, {"rectification_id": rect.id, **change})
