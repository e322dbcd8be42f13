"""``/v1/penalty/letters``: the bureau's letters (审查通过通知, 监督建议书, 监督决定书) and the
unit's reply (回复), as the token's unit."""

from __future__ import annotations

from services.penalty import reads
from services.penalty.api.deps import WorkflowDep
from services.penalty.domain.records import LetterKind, LetterStatus
from services.penalty.schemas import LetterOut, ReplyIn
from shared.api import Page, ServiceDep, audited_router, limit_param, offset_param, run_command
from shared.identity import CallerDep, acting_unit

router = audited_router(prefix="/v1/penalty", tags=["penalty"])


@router.get("/letters", response_model=Page[LetterOut])
async def list_letters(
    svc: ServiceDep,
    caller: CallerDep,
    district: str | None = None,
    unit: str | None = None,
    case_id: str | None = None,
    kind: LetterKind | None = None,
    status: LetterStatus | None = None,
    limit: int = limit_param(),
    offset: int = offset_param(),
) -> Page[LetterOut]:
    filters = {
        "district": district,
        "unit": unit,
        "case_id": case_id,
        "kind": kind,
        "status": status,
    }
    return await reads.page(svc, caller, reads.LETTERS, filters, LetterOut, limit, offset)


@router.get("/letters/{letter_id}", response_model=LetterOut)
async def one_letter(letter_id: str, svc: ServiceDep, caller: CallerDep) -> LetterOut:
    return LetterOut.of(await reads.one(svc, caller, reads.LETTERS, letter_id))


@router.post("/letters/{letter_id}/reply", response_model=LetterOut)
async def reply(
    letter_id: str, body: ReplyIn, svc: ServiceDep, workflow: WorkflowDep, caller: CallerDep
) -> LetterOut:
    """The unit's reply to a 监督建议书 / 监督决定书, as the token's unit."""
    unit = acting_unit(caller, body.by)
    await reads.one(svc, caller, reads.LETTERS, letter_id)
    _, letter = await run_command(
        svc, lambda uow: workflow.record_reply(uow, letter_id, unit, body.content)
    )
    return LetterOut.of(letter.to_doc())
