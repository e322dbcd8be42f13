"""Supervision letters (督办函、监督建议书、监督决定书、移送函): issue, list, read, reply.

A supervisor issues a letter in its bureau's name to a unit in its scope; the recipient (a
移送函's feedback: its issuing bureau) replies as the token's unit.
"""

from __future__ import annotations

from fastapi import HTTPException, Query

from services.notify import reads
from services.notify.api.deps import DirectoryDep, WorkflowDep
from services.notify.domain.letters import LetterStatus
from services.notify.schemas import LetterIn, LetterOut, ReplyIn
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param, run_command
from shared.contracts import LETTER_KINDS, NoticeKind
from shared.identity import CallerDep, Permission, acting_person, acting_unit

router = audited_router(prefix="/v1", tags=["notices"])


@router.post("/letters", response_model=LetterOut, status_code=201, tags=["letters"])
async def issue_letter(
    body: LetterIn,
    svc: ServiceDep,
    workflow: WorkflowDep,
    directory: DirectoryDep,
    caller: CallerDep,
) -> LetterOut:
    """Issue a supervision letter (district or city supervisor; signed by the caller's
    bureau) to a unit in the caller's scope, with a reply deadline that escalates."""
    caller.require(Permission.SUPERVISE)
    if body.kind not in LETTER_KINDS:
        raise HTTPException(422, detail=f"{body.kind.value} is not a supervision letter")
    bureau = acting_unit(caller, None)
    recipient = reads.unit_in_scope(caller, directory, body.recipient_unit)
    letter_id = await run_command(
        svc,
        lambda uow: workflow.issue_letter(
            uow,
            kind=body.kind,
            recipient=recipient,
            bureau=bureau,
            by=caller.sub,
            subject_type=body.subject_type,
            subject_id=body.subject_id,
            summary=body.summary,
            items=body.items,
            reply_days=body.reply_days,
            request_id=body.request_id,
        ),
    )
    return await reads.readable_letter(svc, caller, letter_id)


@router.get("/letters", response_model=Page[LetterOut], tags=["letters"])
async def list_letters(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = Query(None, pattern=r"^\d{6}$"),
    unit: str | None = Query(None, max_length=100, description="recipient unit"),
    kind: NoticeKind | None = None,
    status: LetterStatus | None = None,
    subject_type: str | None = Query(None, max_length=40),
    subject_id: str | None = Query(None, max_length=200),
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[LetterOut]:
    """Supervision letters and how their replies stand, newest first."""
    filters = reads.given(
        {
            "district": district,
            "recipient_unit": unit,
            "kind": kind.value if kind else None,
            "status": status,
            "subject_type": subject_type,
            "subject_id": subject_id,
        }
    )
    return await reads.letter_page(svc, caller, filters, limit, offset)


@router.get("/letters/{letter_id}", response_model=LetterOut, tags=["letters"])
async def get_letter(letter_id: str, svc: ServiceDep, caller: CallerDep) -> LetterOut:
    """One letter; its text and delivery are its notice's (``/v1/notices/{id}``)."""
    return await reads.readable_letter(svc, caller, letter_id)


@router.post("/letters/{letter_id}/reply", response_model=LetterOut, tags=["letters"])
async def reply_letter(
    letter_id: str, body: ReplyIn, svc: ServiceDep, workflow: WorkflowDep, caller: CallerDep
) -> LetterOut:
    """书面回复 as the token's unit (a 移送函's feedback: recorded by its bureau)."""
    unit, by = acting_unit(caller, body.unit), acting_person(caller, body.by)
    await reads.readable_letter(svc, caller, letter_id)
    await run_command(
        svc,
        lambda uow: workflow.record_reply(uow, letter_id, unit=unit, by=by, content=body.content),
    )
    return await reads.readable_letter(svc, caller, letter_id)
