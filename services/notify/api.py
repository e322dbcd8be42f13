"""HTTP API of the notify service: ``/v1/notices`` and ``/v1/units/{unit}/inbox``.

A unit's inbox (站内信), one notice with its rendered text, 签收, delivery status per
channel, resend. Lists are paginated (``limit``, ``offset``) and filterable; bad input answers
4xx with the reason, never 500.

Every route needs a bearer token (``shared.identity``): a unit sees its own inbox and notices,
a district bureau its district's (another's answers 404); 签收 acts as the token's unit (a
body naming another unit → 403).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from services.notify import storage
from services.notify.delivery import DeliveryWorker
from services.notify.domain.aggregates import ChannelState
from services.notify.domain.directory import DirectoryEntry
from services.notify.domain.letters import LetterReply, LetterStatus
from services.notify.domain.notice import Channel, NoticeStatus, notice_id
from services.notify.handlers import NotifyWorkflow
from shared.api import Out, Page, audited_router, limit_param, offset_param, run_command
from shared.clock import Instant
from shared.contracts import LETTER_KINDS, NoticeKind, NoticeSubject, NotificationRequest
from shared.identity import (
    Caller,
    CallerDep,
    Permission,
    acting_person,
    acting_unit,
    present,
    rename_scope,
    require_in_scope,
    within,
)
from shared.mongo import Document, page
from shared.service import Service

T = TypeVar("T")

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
REQUESTED_BY_API = "notify-api"


class NoticeSummary(Out):
    id: str
    doc_number: str = Field(description="文号, e.g. 静司督〔2026〕17号")
    kind: NoticeKind
    title: str
    heading: str
    issuer: str
    issuer_name: str
    recipient_unit: str
    recipient_name: str
    district: str
    subject_type: str
    subject_id: str
    summary: str
    status: NoticeStatus
    deadline: dt.datetime | None = None
    ack_deadline: dt.datetime = Field(description="签收期限")
    acknowledged_at: dt.datetime | None = None
    escalated_at: dt.datetime | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class NoticeOut(NoticeSummary):
    text: str = Field(description="the rendered notice (公文正文)")
    idempotency_key: str
    requested_by: str
    channels: dict[str, ChannelState]
    acknowledged_by: str | None = None
    acknowledged_late: bool | None = None
    ack_note: str | None = None
    escalated_to: str | None = None
    escalation_notice_id: str | None = None
    escalation_of: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class AttemptOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attempt: int
    at: dt.datetime
    outcome: str
    error: str | None = None


class DeliveryOut(BaseModel):
    """Delivery status of one channel of one notice."""

    model_config = ConfigDict(extra="ignore")

    channel: Channel
    status: str = Field(description="pending / sent / failed / skipped")
    target: str | None = None
    attempts: int = 0
    resends: int = 0
    reason: str | None = None
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    history: list[AttemptOut] = Field(default_factory=list)


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    unit: str | None = Field(
        default=None, min_length=1, max_length=100, description="the token's unit (default)"
    )
    by: str | None = Field(
        default=None, min_length=1, max_length=100, description="officer (签收人)"
    )
    note: str | None = Field(default=None, max_length=2000)


class ResendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] | None = Field(
        default=None, max_length=4, description="default: every external channel"
    )


class LetterIn(BaseModel):
    """A supervision letter (督办函、监督建议书、监督决定书、移送函) about any subject."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: NoticeKind = Field(
        description="supervision_letter 督办函 / recommendation 监督建议书 / "
        "decision 监督决定书 / transfer 移送函"
    )
    recipient_unit: str = Field(min_length=1, max_length=100)
    subject_type: NoticeSubject = Field(description="lead / complaint / review / filing …")
    subject_id: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=2000, description="事由")
    items: list[str] = Field(default_factory=list, max_length=30, description="问题清单")
    reply_days: int | None = Field(
        default=None, ge=1, le=90, description="reply window; default: the kind's (settings)"
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the client's id for this letter: repeating a request issues it once",
    )


class LetterOut(Out):
    id: str = Field(description="the letter's notice id")
    kind: NoticeKind
    title: str
    doc_number: str
    issuer: str
    issuer_name: str
    issued_by: str
    recipient_unit: str
    recipient_name: str
    district: str
    subject_type: str
    subject_id: str
    summary: str
    issued_at: dt.datetime
    reply_days: int
    reply_due: dt.datetime = Field(description="回复期限")
    status: LetterStatus
    reply: LetterReply | None = None
    escalated_at: dt.datetime | None = None
    escalated_to: str | None = None
    escalation_notice_id: str | None = None


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    content: str = Field(min_length=1, max_length=5000, description="书面回复 / 处理情况反馈")
    unit: str | None = Field(default=None, min_length=1, max_length=100)
    by: str | None = Field(default=None, min_length=1, max_length=100)


class UnitOut(BaseModel):
    unit: str
    name: str
    district: str
    kind: str
    channels: list[Channel]


def delivery_rows(notice: Document, jobs: list[Document]) -> list[DeliveryOut]:
    """Every channel of the notice: the inbox and skipped ones have no job document."""
    by_channel = {d["channel"]: d for d in jobs}
    rows = []
    for channel, info in notice.get("channels", {}).items():
        job = by_channel.get(channel)
        if job is not None:
            rows.append(DeliveryOut.model_validate(job))
        else:
            rows.append(
                DeliveryOut.model_validate(
                    {**info, "channel": channel, "attempts": info.get("attempts") or 0}
                )
            )
    return rows


def build_router(svc: Service, workflow: NotifyWorkflow, worker: DeliveryWorker) -> APIRouter:
    router = audited_router(prefix="/v1", tags=["notices"])
    directory = workflow.directory
    recipient = {"unit": "recipient_unit"}  # a notice's unit is its recipient

    def known_unit(unit: str) -> DirectoryEntry:
        entry = directory.entry(unit)
        if entry is None:
            raise HTTPException(404, detail=f"unknown unit {unit!r}")
        return entry

    async def notice_or_404(caller: Caller, nid: str) -> Document:
        """The notice when it exists and lies in the caller's scope, else 404."""
        caller.require(Permission.READ_NOTICES)
        doc = await storage.notice_document(svc.db, nid)
        return present(caller, require_in_scope(caller, doc, f"notice {nid}", recipient))

    def filters(
        kind: NoticeKind | None,
        status: NoticeStatus | None,
        acknowledged: bool | None,
        since: dt.datetime | None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if kind is not None:
            query["kind"] = kind.value
        if status is not None:
            query["status"] = status
        if acknowledged is not None:
            # a range (any time since the epoch) rather than ≠ null, so the index serves it
            query["acknowledged_at"] = {"$gt": EPOCH} if acknowledged else None
        if since is not None:
            query["created_at"] = {"$gte": since}
        return query

    @router.get("/units/{unit}/inbox", response_model=Page[NoticeSummary])
    async def inbox(
        unit: str,
        caller: CallerDep,
        kind: NoticeKind | None = None,
        status: NoticeStatus | None = None,
        acknowledged: bool | None = None,
        since: Instant | None = None,
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> Page[NoticeSummary]:
        """A unit's inbox (站内信), newest first."""
        caller.require(Permission.READ_NOTICES)
        entry = known_unit(unit)
        require_in_scope(caller, {"unit": unit, "district": entry.district}, f"unit {unit}")
        query = {"recipient_unit": unit, **filters(kind, status, acknowledged, since)}
        total, docs = await page(
            svc.db, storage.NOTICES, query, limit=limit, offset=offset, sort=storage.NOTICES_ORDER
        )
        return Page(
            total=total,
            limit=limit,
            offset=offset,
            items=[NoticeSummary.of(present(caller, d)) for d in docs],
        )

    @router.get("/units/{unit}", response_model=UnitOut, tags=["directory"])
    async def unit_channels(unit: str) -> UnitOut:
        """What the unit directory says about a unit: its channels."""
        entry = known_unit(unit)
        return UnitOut(
            unit=entry.unit,
            name=entry.name,
            district=entry.district,
            kind=entry.kind,
            channels=entry.channels,
        )

    @router.get("/notices", response_model=Page[NoticeSummary])
    async def list_notices(
        caller: CallerDep,
        district: str | None = Query(None, pattern=r"^\d{6}$"),
        unit: str | None = Query(None, max_length=100, description="recipient unit"),
        issuer: str | None = Query(None, max_length=100),
        subject_type: str | None = Query(None, max_length=40),
        subject_id: str | None = Query(None, max_length=200),
        kind: NoticeKind | None = None,
        status: NoticeStatus | None = None,
        acknowledged: bool | None = None,
        since: Instant | None = None,
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> Page[NoticeSummary]:
        """Notices across units (supervisors), newest first."""
        caller.require(Permission.READ_NOTICES)
        query = filters(kind, status, acknowledged, since)
        for field, value in (
            ("district", district),
            ("recipient_unit", unit),
            ("issuer", issuer),
            ("subject_type", subject_type),
            ("subject_id", subject_id),
        ):
            if value is not None:
                query[field] = value
        query = within(rename_scope(caller.scope, recipient), query)
        total, docs = await page(
            svc.db, storage.NOTICES, query, limit=limit, offset=offset, sort=storage.NOTICES_ORDER
        )
        return Page(
            total=total,
            limit=limit,
            offset=offset,
            items=[NoticeSummary.of(present(caller, d)) for d in docs],
        )

    @router.get("/notices/{notice_id}", response_model=NoticeOut)
    async def get_notice(notice_id: str, caller: CallerDep) -> NoticeOut:
        """One notice with its rendered text and channel states."""
        return NoticeOut.of(await notice_or_404(caller, notice_id))

    @router.post("/notices/{notice_id}/acknowledge", response_model=NoticeOut)
    async def acknowledge(notice_id: str, body: AcknowledgeIn, caller: CallerDep) -> NoticeOut:
        """签收 by the recipient unit (the token's); repeating it changes nothing."""
        unit, by = acting_unit(caller, body.unit), acting_person(caller, body.by)
        await notice_or_404(caller, notice_id)
        notice = await run_command(
            svc,
            lambda uow: workflow.acknowledge(uow, notice_id, unit=unit, by=by, note=body.note),
        )
        return NoticeOut.of(storage.notice_doc(notice))

    @router.get("/notices/{notice_id}/deliveries", response_model=list[DeliveryOut])
    async def deliveries(notice_id: str, caller: CallerDep) -> list[DeliveryOut]:
        """Delivery status per channel, with the attempt history."""
        notice = await notice_or_404(caller, notice_id)
        return delivery_rows(notice, await storage.deliveries_of(svc.db, notice_id))

    @router.post("/notices/{notice_id}/resend", response_model=list[DeliveryOut], status_code=202)
    async def resend(
        notice_id: str, caller: CallerDep, body: ResendIn | None = None
    ) -> list[DeliveryOut]:
        """Queue the notice again (failed, or the unit asks for it again): bureaus, operators."""
        caller.require(Permission.RESEND)
        doc = await storage.notice_document(svc.db, notice_id)
        require_in_scope(caller, doc, f"notice {notice_id}", recipient)
        channels = body.channels if body is not None else None
        queued = await run_command(svc, lambda uow: workflow.resend(uow, notice_id, channels))
        worker.wake()
        return [DeliveryOut.model_validate(storage.delivery_doc(d)) for d in queued]

    # -- supervision letters --------------------------------------------------------------

    async def letter_or_404(caller: Caller, lid: str) -> Document:
        caller.require(Permission.READ_NOTICES)
        doc = await svc.db[storage.LETTERS].find_one({"_id": lid})
        return require_in_scope(caller, doc, f"letter {lid}", recipient)

    @router.post("/letters", response_model=LetterOut, status_code=201, tags=["letters"])
    async def issue_letter(body: LetterIn, caller: CallerDep) -> LetterOut:
        """Issue a supervision letter (district or city supervisor; signed by the caller's
        bureau) to a unit in the caller's scope, with a reply deadline that escalates."""
        caller.require(Permission.SUPERVISE)
        if body.kind not in LETTER_KINDS:
            raise HTTPException(422, detail=f"{body.kind.value} is not a supervision letter")
        bureau = acting_unit(caller, None)
        entry = known_unit(body.recipient_unit)
        require_in_scope(
            caller, {"unit": entry.unit, "district": entry.district}, f"unit {entry.unit}"
        )
        key = f"letter:{bureau}:{body.request_id or uuid.uuid4().hex}"
        request = NotificationRequest(
            idempotency_key=key,
            kind=body.kind,
            recipient_unit=entry.unit,
            district=entry.district,
            subject_type=body.subject_type,
            subject_id=body.subject_id,
            summary=body.summary,
            context={"issued_by": bureau, "issued_by_person": caller.sub, "items": body.items},
            requested_by=REQUESTED_BY_API,
            reply_requested=True,
            reply_days=body.reply_days,
        )
        await run_command(svc, lambda uow: workflow.issue(request, uow))
        return LetterOut.of(await letter_or_404(caller, notice_id(key)))

    @router.get("/letters", response_model=Page[LetterOut], tags=["letters"])
    async def list_letters(
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
        caller.require(Permission.READ_NOTICES)
        wanted = {
            "district": district,
            "recipient_unit": unit,
            "kind": kind.value if kind else None,
            "status": status,
            "subject_type": subject_type,
            "subject_id": subject_id,
        }
        query = within(
            rename_scope(caller.scope, recipient),
            {k: v for k, v in wanted.items() if v is not None},
        )
        total, docs = await page(
            svc.db, storage.LETTERS, query, limit=limit, offset=offset, sort=storage.LETTERS_ORDER
        )
        return Page(total=total, limit=limit, offset=offset, items=[LetterOut.of(d) for d in docs])

    @router.get("/letters/{letter_id}", response_model=LetterOut, tags=["letters"])
    async def get_letter(letter_id: str, caller: CallerDep) -> LetterOut:
        """One letter; its text and delivery are its notice's (``/v1/notices/{id}``)."""
        return LetterOut.of(await letter_or_404(caller, letter_id))

    @router.post("/letters/{letter_id}/reply", response_model=LetterOut, tags=["letters"])
    async def reply_letter(letter_id: str, body: ReplyIn, caller: CallerDep) -> LetterOut:
        """书面回复 as the token's unit (a 移送函's feedback: recorded by its bureau)."""
        unit, by = acting_unit(caller, body.unit), acting_person(caller, body.by)
        await letter_or_404(caller, letter_id)
        await run_command(
            svc,
            lambda uow: workflow.record_reply(
                uow, letter_id, unit=unit, by=by, content=body.content
            ),
        )
        return LetterOut.of(await letter_or_404(caller, letter_id))

    return router
