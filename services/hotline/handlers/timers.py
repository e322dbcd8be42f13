"""The hotline's durable timers: 签收超时 (remind the holder), 办结超期 (催办, then arm the 通报
timer), 超期通报 (escalate and raise an OVERDUE lead) and 应立尽立 (a confirmed violation with
no case opened in time).

Each timer names its complaint and the deadline it was armed for: one armed for a deadline
that has since moved does nothing.
"""

from __future__ import annotations

from typing import Any

from services.hotline import storage
from services.hotline.domain import lifecycle
from services.hotline.domain.leads import is_case_not_opened
from services.hotline.domain.lifecycle import Complaint
from services.hotline.domain.sla import local, working_days_overdue
from services.hotline.handlers.steps import (
    ACTOR,
    ComplaintSteps,
    ack_timer,
    due_timer,
    escalate_timer,
)
from shared.city import supervising_unit
from shared.contracts import LeadKind, NoticeKind
from shared.unit_of_work import UnitOfWork


async def complaint_of(timer: dict[str, Any], uow: UnitOfWork) -> Complaint | None:
    """The complaint a timer names (prefetched with the batch)."""
    return await storage.complaints(uow).get(timer["payload"]["order_id"])


class DeadlineTimers(ComplaintSteps):
    """The handlers of ``hotline.ack_due``, ``resolve_due``, ``escalate``, ``case_check``."""

    async def on_ack_due(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """签收超时: remind the unit holding it (once per dispatch)."""
        complaint = await complaint_of(timer, uow)
        if complaint is None or timer["_id"] != ack_timer(complaint):
            return
        if lifecycle.mark_overdue(complaint, stage="acknowledge", by=ACTOR, at=uow.now()) is None:
            return
        await self._notice(
            uow,
            complaint,
            NoticeKind.REMINDER,
            f"hotline:ack-reminder:{complaint.id}:{complaint.dispatch_seq}",
            f"12345工单 {complaint.id}（{complaint.matter_name or '待分拨'}）派单后超过"
            f" {self.settings.ack_hours:g} 个工作小时未签收，请立即签收办理",
            complaint.due,
            {"stage": "acknowledge", "ack_due": complaint.ack_due, "address": complaint.address},
        )
        await self._save(uow, complaint)

    async def on_resolve_due(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """办结超期: mark overdue, 催办, and arm the 通报 timer."""
        complaint = await complaint_of(timer, uow)
        if complaint is None or timer["_id"] != due_timer(complaint):
            return  # gone, or armed for a deadline that has since moved
        entry = await self._step(
            uow, complaint, lifecycle.mark_overdue, stage="resolve", by=ACTOR, at=uow.now()
        )
        if entry is None or complaint.due is None:
            return
        due_cn = local(complaint.due).strftime("%Y-%m-%d %H:%M")
        await self._notice(
            uow,
            complaint,
            NoticeKind.REMINDER,
            f"hotline:reminder:{complaint.id}:{complaint.due.isoformat()}",
            f"12345工单 {complaint.id}（{complaint.matter_name or '待分拨'}，{complaint.address}）"
            f"应于 {due_cn} 前办结，现已超期",
            None,
            {"stage": "resolve", "due": complaint.due, "limit_days": complaint.limit_days},
        )
        await self._arm_deadline(uow, complaint)  # now overdue: the 通报 timer
        await self._save(uow, complaint)

    async def on_escalate(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """超期 N 个工作日仍未办结: 通报 and an OVERDUE lead."""
        complaint = await complaint_of(timer, uow)
        if complaint is None or complaint.due is None:
            return
        now = uow.now()
        days = working_days_overdue(complaint.due, now)
        if timer["_id"] != escalate_timer(complaint) or days < self.settings.escalate_after_days:
            return  # armed for a deadline that has since moved
        entry = await self._step(
            uow, complaint, lifecycle.escalate, by=ACTOR, at=now, days_overdue=days
        )
        if entry is None:
            return
        summary = (
            f"12345工单 {complaint.id}（{complaint.matter_name or '待分拨'}，{complaint.address}）"
            f"办结期限 {local(complaint.due).strftime('%Y-%m-%d')}，"
            f"已超期 {days} 个工作日仍未办结"
        )
        await self._notice(
            uow,
            complaint,
            NoticeKind.ESCALATION,
            f"hotline:escalation:{complaint.id}",
            summary,
            None,
            {
                "days_overdue": days,
                "due": complaint.due,
                "supervisor": supervising_unit(complaint.unit or complaint.district),
            },
        )
        await self._lead(
            uow,
            complaint,
            LeadKind.OVERDUE,
            (complaint.id,),
            summary,
            {"due": complaint.due, "days_overdue": days, "status": complaint.status},
        )
        await self._save(uow, complaint)

    async def on_case_check(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """应立尽立: a confirmed violation N days ago and still no case for the target."""
        complaint = await complaint_of(timer, uow)
        if (
            complaint is None
            or complaint.verdict != "violation_confirmed"
            or complaint.resolved_at is None
        ):
            return
        times = await storage.case_times_for(uow, order_id=complaint.id, keys=complaint.target_keys)
        days = self.settings.case_deadline_days
        if not is_case_not_opened(complaint.resolved_at, uow.now(), times, days):
            return
        resolved_on = local(complaint.resolved_at).strftime("%Y-%m-%d")
        await self._lead(
            uow,
            complaint,
            LeadKind.CASE_NOT_OPENED,
            (complaint.id,),
            f"工单 {complaint.id}（{complaint.matter_name or '事项不明'}）于 {resolved_on} 办结，"
            f"确认违法行为成立，但 {days} 日内未见对{complaint.target or complaint.address}立案",
            {
                "resolved_at": complaint.resolved_at,
                "outcome": complaint.outcome,
                "target": complaint.target,
                "days": days,
            },
        )
        await self._save(uow, complaint)
