"""What a unit, a bureau or the 12345 platform does to one complaint: 签收, 退单, 重新派单,
延期申请 and 审批, 办结, 改变分类, 评价, and the dispatch each hand-over goes through.

Each command takes the complaint already loaded (``ComplaintSteps.command`` over HTTP,
``WorkOrderIntake.on_updated`` for the platform) and leaves saving it to its caller.
"""

from __future__ import annotations

import datetime as dt

from services.hotline.domain import lifecycle
from services.hotline.domain.leads import case_check_due, confirms_violation
from services.hotline.domain.lifecycle import Complaint, Verdict
from services.hotline.domain.matters import classify
from services.hotline.domain.routing import Route, level_of, redispatch_after_return, triage_unit
from services.hotline.domain.sla import (
    ack_deadline,
    extend_deadline,
    resolve_deadline,
)
from services.hotline.handlers.detectors import LeadDetectors
from services.hotline.handlers.steps import (
    ACK_DUE,
    ACTOR,
    CASE_CHECK,
    Acting,
    ack_timer,
    timer_id,
)
from shared.api import Conflict
from shared.city import CITY_BUREAU, supervising_unit
from shared.unit_of_work import UnitOfWork


class UnitCommands(LeadDetectors):
    """The commands on one complaint; a step its state does not allow answers 409."""

    async def acknowledge(self, uow: UnitOfWork, complaint: Complaint, acting: Acting) -> None:
        """签收 by the unit holding the complaint: its 签收 clock stops."""
        await self._step(uow, complaint, lifecycle.acknowledge, **acting)
        await uow.cancel(ack_timer(complaint))

    async def return_order(
        self, uow: UnitOfWork, complaint: Complaint, acting: Acting, reason: str
    ) -> None:
        """退单, then re-dispatch by the catalogue (or to triage) in the same step."""
        await self._step(uow, complaint, lifecycle.return_order, **acting, reason=reason)
        planned = await self._planned_route(uow, complaint)
        target = redispatch_after_return(self.city, planned, acting["unit"], complaint.district)
        await self._dispatch(uow, complaint, target, by=ACTOR, at=acting["at"])
        await self._check_bounce(uow, complaint)

    async def reroute(
        self, uow: UnitOfWork, complaint: Complaint, acting: Acting, to_unit: str, reason: str
    ) -> None:
        """Re-dispatch by the supervising bureau (the triage queue's owner) or the city."""
        allowed = {triage_unit(self.city, complaint.district), CITY_BUREAU}
        if acting["unit"] not in allowed:
            raise Conflict(
                f"only {' or '.join(sorted(allowed))} can re-dispatch complaint {complaint.id}"
            )
        if not complaint.is_open:
            raise Conflict(
                f"complaint {complaint.id} is {complaint.status}: it can no longer be re-dispatched"
            )
        await self.hand_over(uow, complaint, to_unit, reason, by=acting["by"], at=acting["at"])

    async def hand_over(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        to_unit: str,
        reason: str,
        *,
        by: str,
        at: dt.datetime,
    ) -> None:
        """Dispatch to a named unit (重新派单, or 12345's own re-dispatch)."""
        if self.city.unit(to_unit) is None:
            raise Conflict(f"unknown unit {to_unit}")
        level = level_of(self.city, to_unit)
        target = Route(unit=to_unit, level=level, reason=reason, street=complaint.street)
        await self._dispatch(uow, complaint, target, by=by, at=at)

    async def request_extension(
        self, uow: UnitOfWork, complaint: Complaint, acting: Acting, days: int, reason: str
    ) -> None:
        """延期申请, before the deadline, by the unit holding the complaint."""
        await self._step(
            uow,
            complaint,
            lifecycle.request_extension,
            **acting,
            days=days,
            reason=reason,
            max_days=self.settings.max_extension_days,
        )

    def extension_deciders(self, complaint: Complaint) -> tuple[str, ...]:
        """Who may decide an extension: the supervising 司法局, or the city's."""
        return (supervising_unit(complaint.unit or complaint.district), CITY_BUREAU)

    async def decide_extension(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        acting: Acting,
        approved: bool,
        note: str | None,
        deciders: tuple[str, ...] | None = None,
    ) -> None:
        """延期审批; an approval moves the deadline and its timers."""
        extension, previous_due = complaint.extension, complaint.due
        new_due = (
            extend_deadline(previous_due, extension.days)
            if approved and extension is not None and previous_due is not None
            else None
        )
        await self._step(
            uow,
            complaint,
            lifecycle.decide_extension,
            **acting,
            approved=approved,
            note=note,
            new_due=new_due,
            allowed_deciders=deciders or self.extension_deciders(complaint),
        )
        await self._move_deadline(uow, complaint, previous_due)

    async def resolve(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        acting: Acting,
        outcome: str,
        verdict: Verdict | None,
    ) -> None:
        """办结; a confirmed violation starts the 应立尽立 watch (the case-check timer)."""
        confirmed = confirms_violation(
            verdict, outcome, self.settings.violation_keywords, self.settings.violation_negations
        )
        if verdict is None and confirmed:
            verdict = "violation_confirmed"
        await self._step(
            uow, complaint, lifecycle.resolve, **acting, outcome=outcome, verdict=verdict
        )
        await uow.cancel(ack_timer(complaint))
        await self._disarm_deadline(uow, complaint, complaint.due)
        if confirmed:
            check_at = case_check_due(acting["at"], self.settings.case_deadline_days)
            case_check = timer_id("case-check", complaint.id)
            await self._schedule(
                uow,
                complaint,
                case_check,
                CASE_CHECK,
                check_at,
                target_keys=list(complaint.target_keys),  # what its check looks cases up by
            )

    async def reclassify(
        self, uow: UnitOfWork, complaint: Complaint, category: str, by: str, at: dt.datetime
    ) -> None:
        """12345 改变分类: new matter, 办结 deadline recomputed (approved extensions kept), and
        re-routed by the catalogue for the new matter (not a hand-over by a unit)."""
        found = classify(self.matters, category, complaint.description)
        if found.matter is None:
            raise Conflict(f"unknown matter category {category!r}")
        matter = self.matters.get(found.matter)
        days = self._limit_days(complaint.kind, found.matter)
        due = resolve_deadline(complaint.received_at, days)
        for extension in complaint.extensions:
            if extension.status == "approved":
                due = extend_deadline(due, extension.days)
        previous_due = complaint.due
        entry = await self._step(
            uow,
            complaint,
            lifecycle.reclassify,
            matter=found.matter,
            matter_name=matter.name if matter else None,
            classified_by=found.by,
            category=category,
            by=by,
            at=at,
            due=due,
            limit_days=days,
        )
        if entry is None:
            return
        await self._move_deadline(uow, complaint, previous_due)
        planned = await self._planned_route(uow, complaint)
        if planned.unit == complaint.unit:
            complaint.matter_level = planned.matter_level
            return
        reason = f"12345改变分类为「{complaint.matter_name or complaint.matter}」，{planned.reason}"
        target = planned.model_copy(update={"reason": reason})
        await self._dispatch(uow, complaint, target, by=by, at=at, handover=False)

    async def rate(
        self, uow: UnitOfWork, complaint: Complaint, by: str, at: dt.datetime, satisfaction: int
    ) -> None:
        """满意度评价 by the complainant, as 12345 reports it."""
        await self._step(uow, complaint, lifecycle.rate, by=by, at=at, satisfaction=satisfaction)

    async def _dispatch(
        self,
        uow: UnitOfWork,
        complaint: Complaint,
        target: Route,
        *,
        by: str,
        at: dt.datetime,
        handover: bool = True,
    ) -> None:
        """派单 to ``target`` with a new 签收 clock; a hand-over between units is checked for
        以属地为由推责 and 推诿."""
        held_by = list(complaint.units_seen)
        if complaint.dispatch_seq:
            await uow.cancel(ack_timer(complaint))  # the previous holder's 签收 clock stops
        ack_due = ack_deadline(at, self.settings.ack_hours)
        entry = await self._step(
            uow,
            complaint,
            lifecycle.dispatch,
            target,
            by=by,
            at=at,
            ack_due=ack_due,
            handover=handover,
        )
        await self._schedule(
            uow,
            complaint,
            ack_timer(complaint),
            ACK_DUE,
            ack_due,
            dispatch_seq=complaint.dispatch_seq,
        )
        if entry is not None and entry.verb == "rerouted" and handover:
            await self._check_shift(uow, complaint, target, held_by)
            await self._check_bounce(uow, complaint)
