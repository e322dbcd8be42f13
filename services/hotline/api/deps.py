"""What the hotline's routes depend on: the workflow the service was given, and the unit
actions on one complaint as the caller.

A unit action acts as the unit in the token: the body's ``unit`` may be left out and a body
naming another unit is refused (403); ``by`` may repeat the token's subject, which is who
acts. The complaint must lie in the caller's scope (404 otherwise); an action that does not
fit its state answers 409 with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Concatenate, ParamSpec

from fastapi import Depends

from services.hotline import reads
from services.hotline.domain.lifecycle import Complaint
from services.hotline.handlers import Acting, HotlineWorkflow
from services.hotline.schemas import ComplaintDetail, UnitAction, detail
from shared.api import ServiceDep, component, run_command
from shared.identity import Caller, CallerDep, Permission, acting_person, acting_unit
from shared.service import Service
from shared.unit_of_work import UnitOfWork

P = ParamSpec("P")

WorkflowDep = Annotated[HotlineWorkflow, Depends(component(HotlineWorkflow))]
"""The service's :class:`HotlineWorkflow` (``Service.provide`` in ``main``)."""


@dataclass(frozen=True)
class UnitActions:
    """Unit actions on one complaint by the caller, each in one transaction."""

    svc: Service
    workflow: HotlineWorkflow
    caller: Caller

    async def run(
        self,
        order_id: str,
        body: UnitAction,
        command: Callable[Concatenate[UnitOfWork, Complaint, Acting, P], Awaitable[None]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> ComplaintDetail:
        """Run ``command`` (a :class:`HotlineWorkflow` method) on the complaint as the
        token's unit and person; the complaint as it is afterwards."""
        unit = acting_unit(self.caller, body.unit)
        by = acting_person(self.caller, body.by)

        async def act(uow: UnitOfWork, complaint: Complaint) -> None:
            reads.visible(self.caller, complaint, order_id)
            acting = Acting(unit=unit, by=by, at=uow.now())
            await command(uow, complaint, acting, *args, **kwargs)

        async def work(uow: UnitOfWork) -> Complaint:
            return await self.workflow.command(uow, order_id, lambda found: act(uow, found))

        return detail(await run_command(self.svc, work))

    async def supervise(
        self,
        order_id: str,
        body: UnitAction,
        command: Callable[Concatenate[UnitOfWork, Complaint, Acting, P], Awaitable[None]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> ComplaintDetail:
        """:meth:`run` for what only a supervising bureau does (重新派单, 延期审批)."""
        self.caller.require(Permission.SUPERVISE)
        return await self.run(order_id, body, command, *args, **kwargs)


def unit_actions(svc: ServiceDep, workflow: WorkflowDep, caller: CallerDep) -> UnitActions:
    return UnitActions(svc, workflow, caller)


UnitActionsDep = Annotated[UnitActions, Depends(unit_actions)]
