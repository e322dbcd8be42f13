"""Issuing a notice (发文): one transaction for the notice and all that comes with it.

The notice (numbered from the atomic counter, text rendered), its pending deliveries, its
escalation timer, a letter's reply record and timer, and the ``created`` event commit together
or not at all. Nothing is sent inside it: the delivery worker picks the pending deliveries up
after commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import structlog
from pydantic_core import to_jsonable_python

from services.notify import storage
from services.notify.channels import unavailable_reason
from services.notify.domain.aggregates import ChannelState, Delivery, Notice
from services.notify.domain.directory import DirectoryEntry, UnitDirectory, resolve_target
from services.notify.domain.letters import Letter, reply_deadline
from services.notify.domain.notice import (
    EXTERNAL_CHANNELS,
    Channel,
    acknowledgement_deadline,
    cn_date,
    cn_datetime,
    counter_key,
    document_number,
    document_year,
    notice_id,
    title_of,
)
from services.notify.rendering import (
    SUBJECT_LABELS,
    LetterFields,
    context_items,
    escalation_of,
    render,
)
from services.notify.settings import NotifySettings
from shared.city import supervising_unit
from shared.contracts import LETTER_KINDS, NoticeKind, NotificationRequest, parse_data
from shared.envelope import Envelope, EventRejected
from shared.topics import NOTIFY_EVENTS
from shared.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

EVENT_PREFIX = "jiandu.notify.notice."
ESCALATION_DUE = "notify.escalation_due"
LETTER_REPLY_DUE = "notify.letter_reply_due"
REQUESTED_BY = "notify"

Verb = Literal["created", "sent", "failed", "acknowledged", "escalated", "replied", "reply_overdue"]


def escalation_timer(nid: str) -> str:
    return f"notify:escalation:{nid}"


def reply_timer(nid: str) -> str:
    return f"notify:letter-reply:{nid}"


def wall_now() -> dt.datetime:
    """Delivery scheduling (leases, backoff) runs on real time, not the business clock."""
    return dt.datetime.now(dt.UTC)


def snapshot(notice: Notice) -> dict[str, Any]:
    """The notice as events carry it (``id`` for ``_id``; channels reduced to their status)."""
    doc = storage.notice_doc(notice)
    body = {k: v for k, v in doc.items() if k not in ("_id", "channels", "context")}
    return {
        "id": notice.id,
        "unit": notice.recipient_unit,
        **to_jsonable_python(body),
        "channels": notice.channel_states(),
    }


def notice_of_request(event: Envelope) -> str | None:
    """The notice a request will create or find (prefetched for the whole batch)."""
    key = event.data.get("idempotency_key")
    return notice_id(key) if isinstance(key, str) else None


class NoticeIssuer:
    """Issues notices and announces what happens to them (``jiandu.notify.notice.*``)."""

    def __init__(self, settings: NotifySettings, source: str, directory: UnitDirectory) -> None:
        self.settings = settings
        self.source = source
        self.directory = directory

    async def emit(
        self, uow: UnitOfWork, verb: Verb, notice: Notice, change: dict[str, Any]
    ) -> None:
        await uow.emit(
            Envelope(
                type=EVENT_PREFIX + verb,
                source=self.source,
                subject=f"notice/{notice.id}",
                district=notice.district,
                partitionkey=notice.id,
                time=uow.now(),
                data={"notice": snapshot(notice), "change": to_jsonable_python(change)},
            ),
            NOTIFY_EVENTS,
        )

    async def on_requested(self, event: Envelope, uow: UnitOfWork) -> None:
        """``jiandu.notify.requested``: one notice per idempotency key, however often asked."""
        request = parse_data(event, NotificationRequest)
        await self.issue(request, uow, request_event_id=event.id)

    def recipient(self, unit: str) -> DirectoryEntry:
        """The unit's directory entry; a request to a unit not on file is rejected."""
        entry = self.directory.entry(unit)
        if entry is None:
            raise EventRejected(f"recipient_unit: unknown unit {unit!r}", code="unknown_unit")
        return entry

    async def issue(
        self,
        request: NotificationRequest,
        uow: UnitOfWork,
        *,
        request_event_id: str | None = None,
        original: Notice | None = None,
        overdue_letter: Letter | None = None,
    ) -> Notice | None:
        """Create the notice for ``request`` unless its idempotency key already has one
        (a letter asking for a reply also gets its :class:`Letter` and reply timer)."""
        nid = notice_id(request.idempotency_key)
        existing = await storage.notices(uow).get(nid)
        if existing is not None:
            log.info("duplicate notice request", key=request.idempotency_key, notice=existing.id)
            return None
        if request.reply_requested and request.kind not in LETTER_KINDS:
            raise EventRejected(
                f"reply_requested: a {request.kind.value} is not a supervision letter",
                code="not_a_letter",
            )
        recipient = self.recipient(request.recipient_unit)
        issuer = self.directory.issuer_for(recipient.unit, request.context.get("issued_by"))
        now = uow.now()
        year = document_year(now)
        prefix = self.directory.issuer_prefix(issuer)
        ack_deadline = acknowledgement_deadline(
            now, request.deadline, self.settings.ack_working_days
        )
        reply_days = reply_due = None
        if request.reply_requested:
            reply_days = request.reply_days or self.settings.letter_reply_days.get(request.kind, 15)
            reply_due = reply_deadline(now, reply_days)
        deadline = reply_due or request.deadline
        title = title_of(request.kind)
        heading, quoted = title, None
        if original is not None:
            heading, quoted = escalation_of(original, overdue_letter)
        channels = {Channel.INBOX.value: ChannelState.inbox(recipient.unit, now)}
        jobs: list[Delivery] = []
        for channel in recipient.channels:
            if channel not in EXTERNAL_CHANNELS:
                continue
            state, job = self.plan_delivery(nid, recipient, channel)
            channels[channel.value] = state
            if job is not None:
                jobs.append(job)
        storage.add_deliveries(uow, jobs)
        if self._escalates(request.kind, recipient.unit):
            await uow.schedule(
                escalation_timer(nid),
                ESCALATION_DUE,
                ack_deadline,
                {"notice_id": nid},
                subject=f"notice/{nid}",
            )
        # The counter is the one document concurrent issues share: take the number last,
        # so the transaction holds it for the shortest time (fewer write conflicts).
        seq = await storage.next_sequence(uow, counter_key(prefix, request.kind, year))
        number = document_number(prefix, request.kind, year, seq)
        contact = request.context.get("contact")
        fields = LetterFields(
            issuer_name=issuer.name,
            recipient_name=recipient.name,
            title=title,
            heading=heading,
            doc_number=number,
            subject_label=SUBJECT_LABELS.get(request.subject_type, "有关事项"),
            subject_id=request.subject_id,
            summary=request.summary,
            deadline_cn=cn_datetime(deadline) if deadline else None,
            ack_deadline_cn=cn_datetime(ack_deadline),
            issued_date_cn=cn_date(now),
            issued_datetime_cn=cn_datetime(now),
            items=context_items(request.context),
            contact=contact if isinstance(contact, str) else None,
            original=quoted,
        )
        notice = Notice(
            id=nid,
            idempotency_key=request.idempotency_key,
            kind=request.kind,
            title=title,
            heading=heading,
            doc_number=number,
            year=year,
            sequence=seq,
            issuer=issuer.unit,
            issuer_name=issuer.name,
            recipient_unit=recipient.unit,
            recipient_name=recipient.name,
            district=request.district,
            subject_type=request.subject_type,
            subject_id=request.subject_id,
            summary=request.summary,
            context=request.context,
            deadline=deadline,
            ack_deadline=ack_deadline,
            text=render(request.kind, fields),
            channels=channels,
            requested_by=request.requested_by,
            request_event_id=request_event_id,
            escalation_of=original.id if original is not None else None,
            created_at=now,
            updated_at=now,
        )
        notice.touch(now)
        storage.add_notice(uow, notice)
        if reply_days is not None and reply_due is not None:
            issued_by = str(request.context.get("issued_by_person") or request.requested_by)
            storage.letters(uow).add(
                Letter.of_notice(
                    notice, issued_by=issued_by, reply_days=reply_days, reply_due=reply_due
                )
            )
            await uow.schedule(
                reply_timer(nid),
                LETTER_REPLY_DUE,
                reply_due,
                {"notice_id": nid},
                subject=f"notice/{nid}",
            )
        await self.emit(
            uow,
            "created",
            notice,
            {
                "by": request.requested_by,
                "at": now,
                "idempotency_key": request.idempotency_key,
                "request_event_id": request_event_id,
            },
        )
        return notice

    async def issue_escalation(
        self,
        uow: UnitOfWork,
        key: str,
        to_unit: str,
        original: Notice,
        overdue_letter: Letter | None = None,
    ) -> tuple[str, Notice | None]:
        """The one 通报 (escalation notice, idempotent by ``key``) to ``to_unit`` about an
        unacknowledged notice, or about an unanswered letter when ``overdue_letter`` is given;
        its id, and the notice when this call issued it."""
        about: Notice | Letter = overdue_letter or original
        request = NotificationRequest(
            idempotency_key=key,
            kind=NoticeKind.ESCALATION,
            recipient_unit=to_unit,
            district=about.district,
            subject_type=about.subject_type,
            subject_id=about.subject_id,
            summary=about.summary,
            context={"escalation_of": original.id, "original_doc_number": about.doc_number},
            requested_by=REQUESTED_BY,
        )
        issued = await self.issue(request, uow, original=original, overdue_letter=overdue_letter)
        return notice_id(key), issued

    def plan_delivery(
        self, nid: str, recipient: DirectoryEntry, channel: Channel
    ) -> tuple[ChannelState, Delivery | None]:
        """The channel's initial state, and its delivery job when it can deliver at all."""
        target = resolve_target(
            recipient,
            channel,
            webhook_url_override=self.settings.webhook_url_override,
            webhook_urls=self.settings.webhook_urls,
        )
        reason = unavailable_reason(self.settings, channel, target)
        if reason is not None or target is None:
            return ChannelState.skipped(target, reason or "no target on file"), None
        job = Delivery(
            id=storage.delivery_id(nid, channel.value),
            notice_id=nid,
            channel=channel,
            unit=recipient.unit,
            target=target,
            next_attempt_at=wall_now(),
        )
        return ChannelState.queued(target), job

    def _escalates(self, kind: NoticeKind, unit: str) -> bool:
        """Escalation notices are not escalated again, and the city bureau has no one above;
        a 移送函 goes outside the platform (纪检监察机关): its follow-up is its reply deadline."""
        return (
            self.settings.escalation_enabled
            and kind not in (NoticeKind.ESCALATION, NoticeKind.TRANSFER)
            and supervising_unit(unit) != unit
        )
