"""Notices: a unit's inbox (站内信), one notice with its text, 签收, delivery status, resend.

签收 acts as the token's unit (a body naming another unit → 403); resending is for bureaus
and operators.
"""

from __future__ import annotations

from fastapi import Query

from services.notify import reads, storage
from services.notify.api.deps import DirectoryDep, NoticeFiltersDep, WorkerDep, WorkflowDep
from services.notify.schemas import (
    AcknowledgeIn,
    DeliveryOut,
    NoticeOut,
    NoticeSummary,
    ResendIn,
    UnitOut,
)
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param, run_command
from shared.identity import CallerDep, Permission, acting_person, acting_unit

router = audited_router(prefix="/v1", tags=["notices"])


@router.get("/units/{unit}/inbox", response_model=Page[NoticeSummary])
async def inbox(
    unit: str,
    svc: ServiceDep,
    directory: DirectoryDep,
    caller: CallerDep,
    filters: NoticeFiltersDep,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[NoticeSummary]:
    """A unit's inbox (站内信), newest first."""
    return await reads.inbox(svc, caller, directory, unit, filters.query(), limit, offset)


@router.get("/units/{unit}", response_model=UnitOut, tags=["directory"])
async def unit_channels(unit: str, directory: DirectoryDep) -> UnitOut:
    """What the unit directory says about a unit: its channels."""
    entry = reads.known_unit(directory, unit)
    return UnitOut(
        unit=entry.unit,
        name=entry.name,
        district=entry.district,
        kind=entry.kind,
        channels=entry.channels,
    )


@router.get("/notices", response_model=Page[NoticeSummary])
async def list_notices(
    svc: ServiceDep,
    caller: CallerDep,
    filters: NoticeFiltersDep,
    district: str | None = Query(None, pattern=r"^\d{6}$"),
    unit: str | None = Query(None, max_length=100, description="recipient unit"),
    issuer: str | None = Query(None, max_length=100),
    subject_type: str | None = Query(None, max_length=40),
    subject_id: str | None = Query(None, max_length=200),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[NoticeSummary]:
    """Notices across units (supervisors), newest first."""
    query = filters.query() | reads.given(
        {
            "district": district,
            "recipient_unit": unit,
            "issuer": issuer,
            "subject_type": subject_type,
            "subject_id": subject_id,
        }
    )
    return await reads.notices(svc, caller, query, limit, offset)


@router.get("/notices/{notice_id}", response_model=NoticeOut)
async def get_notice(notice_id: str, svc: ServiceDep, caller: CallerDep) -> NoticeOut:
    """One notice with its rendered text and channel states."""
    return NoticeOut.of(await reads.readable_notice(svc, caller, notice_id))


@router.post("/notices/{notice_id}/acknowledge", response_model=NoticeOut)
async def acknowledge(
    notice_id: str,
    body: AcknowledgeIn,
    svc: ServiceDep,
    workflow: WorkflowDep,
    caller: CallerDep,
) -> NoticeOut:
    """签收 by the recipient unit (the token's); repeating it changes nothing."""
    unit, by = acting_unit(caller, body.unit), acting_person(caller, body.by)
    await reads.readable_notice(svc, caller, notice_id)
    notice = await run_command(
        svc, lambda uow: workflow.acknowledge(uow, notice_id, unit=unit, by=by, note=body.note)
    )
    return NoticeOut.of(storage.notice_doc(notice))


@router.get("/notices/{notice_id}/deliveries", response_model=list[DeliveryOut])
async def deliveries(notice_id: str, svc: ServiceDep, caller: CallerDep) -> list[DeliveryOut]:
    """Delivery status per channel, with the attempt history."""
    return await reads.deliveries(svc, caller, notice_id)


@router.post("/notices/{notice_id}/resend", response_model=list[DeliveryOut], status_code=202)
async def resend(
    notice_id: str,
    svc: ServiceDep,
    workflow: WorkflowDep,
    worker: WorkerDep,
    caller: CallerDep,
    body: ResendIn | None = None,
) -> list[DeliveryOut]:
    """Queue the notice again (failed, or the unit asks for it again): bureaus, operators."""
    caller.require(Permission.RESEND)
    await reads.notice_in_scope(svc, caller, notice_id)
    channels = body.channels if body is not None else None
    queued = await run_command(svc, lambda uow: workflow.resend(uow, notice_id, channels))
    worker.wake()
    return [DeliveryOut.model_validate(storage.delivery_doc(job)) for job in queued]
