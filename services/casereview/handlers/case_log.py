"""What every casereview handler does to a case file: load it, save it, and say so.

A case's change goes out on ``casereview.case.events`` as ``jiandu.casereview.case.<verb>``
with a snapshot of its review state (never the file: no personal data), in the same unit of
work as the change itself (outbox).
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python

from services.casereview import storage
from services.casereview.domain.records import Case, ReviewState
from shared.api import existing
from shared.topics import CASEREVIEW_EVENTS
from shared.unit_of_work import UnitOfWork

EVENT_PREFIX = "jiandu.casereview.case."
RAISED_BY = "casereview"
"""Who requests the service's notices and raises its leads."""

SNAPSHOT_FIELDS = (
    "district",
    "unit",
    "status",
    "updated_at",
    "procedure",
    "matter",
    "closed_on",
    "decision",
    "finding_codes",
    *ReviewState.model_fields,
)


def snapshot(case: Case) -> dict[str, Any]:
    """The case as events carry it: the review state, not the file (no personal data)."""
    doc = case.to_doc()
    body = {name: doc.get(name) for name in SNAPSHOT_FIELDS}
    body["defects"] = len(case.findings)
    return {"id": case.id, **to_jsonable_python(body)}


async def load_case(uow: UnitOfWork, case_id: str) -> Case:
    return await existing(storage.cases(uow), case_id, "case")


def save_case(uow: UnitOfWork, case: Case) -> None:
    case.updated_at = uow.now()
    storage.cases(uow).put(case)


async def emit(uow: UnitOfWork, case: Case, verb: str, change: dict[str, Any]) -> None:
    """``jiandu.casereview.case.<verb>``: the case as it is now and what changed."""
    await uow.emit_change(
        CASEREVIEW_EVENTS,
        EVENT_PREFIX + verb,
        "case",
        case.id,
        case.district,
        snapshot(case),
        change,
    )


async def record(uow: UnitOfWork, case: Case, verb: str, change: dict[str, Any]) -> None:
    """Save the case and emit its change."""
    save_case(uow, case)
    await emit(uow, case, verb, change)
