"""Intake (收案): a closed case file is stored and pre-checked (自动预检); the officer
registry the pre-check reads (持证上岗) is kept as a copy of the inspection service's."""

from __future__ import annotations

import hashlib
import json

import structlog

from services.casereview import storage
from services.casereview.domain.precheck import (
    PrecheckPolicy,
    check_registered_certificates,
    run_prechecks,
)
from services.casereview.domain.records import Case, IgnoredRevision
from services.casereview.handlers.case_log import emit, record, save_case
from shared.contracts import CaseClosed, parse_data
from shared.envelope import Envelope, EventRejected
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

log = structlog.get_logger(__name__)

CASE_CLOSED = "gov.enforcement.case.closed"


def file_hash(case: CaseClosed) -> str:
    """The file's content hash: a resend of the same file is recognised whatever its event."""
    body = json.dumps(case.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def officer_ids(event: Envelope) -> list[str]:
    """Prefetch key: the officers a closed case file names (their registry entries are read
    with the batch's one query, not one query per file). Any input: bad data gives none."""
    officers = event.data.get("officers") if isinstance(event.data, dict) else None
    if not isinstance(officers, list):
        return []
    return [o["id"] for o in officers if isinstance(o, dict) and isinstance(o.get("id"), str)]


class Intake:
    """收案: the handlers of what comes in; the pre-check thresholds come from the settings."""

    def __init__(self, policy: PrecheckPolicy) -> None:
        self.policy = policy

    async def on_case_closed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Store the file, pre-check it; a resent identical file changes nothing."""
        file = parse_data(event, CaseClosed)
        digest = file_hash(file)
        registry = await storage.registry_of(uow, sorted({officer.id for officer in file.officers}))
        findings = check_registered_certificates(file, run_prechecks(file, self.policy), registry)
        existing = await storage.cases(uow).get(file.case_id)
        now = uow.now()
        if existing is not None:
            if existing.file_hash == digest:
                log.info("case file resent unchanged", case_id=file.case_id, event_id=event.id)
                return
            if existing.status != "registered":
                # Under review already: the reviewed version stays; the resend is noted.
                existing.ignored_revisions.append(
                    IgnoredRevision(event_id=event.id, file_hash=digest, at=now)
                )
                save_case(uow, existing)
                log.warning("revised case file after sampling ignored", case_id=file.case_id)
                return
        closed_on = file.dates.closed or event.time.astimezone(CST).date()
        case = Case(
            id=file.case_id,
            district=file.district,
            unit=file.unit,
            procedure=file.procedure,
            matter=file.matter,
            closed_on=closed_on.isoformat(),
            decision=file.decision.model_dump(mode="json"),
            file=file.model_dump(mode="json"),
            file_hash=digest,
            findings=findings,
            finding_codes=sorted({found.code for found in findings}),
            status="registered",
            received_at=existing.received_at if existing else now,
            event_id=event.id,
            revision=(existing.revision if existing else 0) + 1,
        )
        await record(
            uow, case, "registered", {"at": now, "event_id": event.id, "revision": case.revision}
        )
        if findings:
            defects = [
                {"code": found.code, "severity": found.severity, "message": found.message}
                for found in findings
            ]
            await emit(uow, case, "defects_found", {"at": now, "findings": defects})

    async def on_officer_changed(self, event: Envelope, uow: UnitOfWork) -> None:
        """The inspection service's registry entry for one officer: keep the latest copy."""
        entry = event.data.get("officer")
        if not isinstance(entry, dict) or not entry.get("id"):
            raise EventRejected(f"{event.type} without an officer entry")
        doc = {key: value for key, value in entry.items() if key != "id"}
        storage.put_officer(uow, {"_id": str(entry["id"]), **doc, "event_id": event.id})
