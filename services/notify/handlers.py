"""Event, timer and command handlers of the notify service.

Issuing a notice is one transaction: the notice (numbered from the atomic counter, text
rendered), its pending deliveries, its escalation timer and the ``created`` event commit
together or not at all. Nothing is sent inside it: the delivery worker
(:mod:`services.notify.delivery`) picks the pending deliveries up after commit, and each
outcome is recorded by :meth:`NotifyWorkflow.settle` in a transaction of its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import structlog
from pydantic_core import to_jsonable_python

from services.notify import storage
from services.notify.channels import unavailable_reason
from services.notify.domain.aggregates import ChannelState, Delivery, Notice, Outcome
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
    escalation_key,
    notice_id,
    title_of,
)
from services.notify.rendering import (
    SUBJECT_LABELS,
    LetterFields,
    OriginalNotice,
    context_items,
    render,
)
from services.notify.settings import NotifySettings
from shared.api import Conflict, Forbidden, NotFound
from shared.city import supervising_unit
from shared.clock import utc
from shared.contracts import (
    LETTER_KINDS,
    LeadKind,
    NoticeKind,
    NotificationRequest,
    SupervisionLead,
    parse_data,
)
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
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


def letter_escalation_key(nid: str) -> str:
    """Idempotency key of the one 通报 an unanswered letter may cause."""
    return f"notify:letter-escalation:{nid}"


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


class NotifyWorkflow:
    """Issuing, delivering (outcomes), acknowledging and escalating notices."""

    def __init__(self, settings: NotifySettings, source: str, directory: UnitDirectory) -> None:
        self.settings = settings
        self.source = source
        self.directory = directory

    # -- events out -----------------------------------------------------------------------

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

    # -- issuing ----------------------------------------------------------------------------

    async def on_requested(self, event: Envelope, uow: UnitOfWork) -> None:
        """``jiandu.notify.requested``: one notice per idempotency key, however often asked."""
        request = parse_data(event, NotificationRequest)
        await self.issue(request, uow, request_event_id=event.id)

    def _recipient(self, unit: str) -> DirectoryEntry:
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
        recipient = self._recipient(request.recipient_unit)
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
        heading = title
        original_fields: OriginalNotice | None = None
        if original is not None:
            missing = "回复" if overdue_letter is not None else "签收"
            heading = f"关于{original.recipient_name}逾期未{missing}{original.title}的通报"
            original_fields = OriginalNotice(
                issuer_name=original.issuer_name,
                recipient_name=original.recipient_name,
                title=original.title,
                doc_number=original.doc_number,
                issued_date_cn=cn_date(utc(original.created_at)),
                ack_deadline_cn=cn_datetime(utc(original.ack_deadline)),
                reply_due_cn=(
                    cn_datetime(utc(overdue_letter.reply_due)) if overdue_letter else None
                ),
            )
        channels = {Channel.INBOX.value: ChannelState.inbox(recipient.unit, now)}
        jobs: list[Delivery] = []
        for channel in recipient.channels:
            if channel not in EXTERNAL_CHANNELS:
                continue
            state, job = self._plan_delivery(nid, recipient, channel)
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
            original=original_fields,
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
            storage.letters(uow).add(
                Letter(
                    id=nid,
                    kind=request.kind,
                    title=title,
                    doc_number=number,
                    issuer=issuer.unit,
                    issuer_name=issuer.name,
                    issued_by=str(request.context.get("issued_by_person") or request.requested_by),
                    recipient_unit=recipient.unit,
                    recipient_name=recipient.name,
                    district=request.district,
                    subject_type=request.subject_type,
                    subject_id=request.subject_id,
                    summary=request.summary,
                    issued_at=now,
                    reply_days=reply_days,
                    reply_due=reply_due,
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

    def _plan_delivery(
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

    # -- delivery outcomes -----------------------------------------------------------------

    async def settle(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        token: str,
        outcome: Outcome,
        *,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
    ) -> bool:
        """Record one attempt; False when our claim was lost (another replica owns it now)."""
        now = uow.now()
        jobs = storage.deliveries(uow)
        job = await jobs.get(delivery.id)
        if job is None or not job.held_by(token):
            return False
        job.settle(outcome, at=now, wall=wall_now(), error=error, retry_at=retry_at)
        jobs.put(job)
        notices = storage.notices(uow)
        notice = await notices.get(delivery.notice_id)
        if notice is None:
            raise LookupError(delivery.notice_id)
        channel = delivery.channel.value
        attempts = delivery.attempts
        state = ChannelState.after(
            outcome, target=delivery.target, attempts=attempts, at=now, error=error
        )
        notice.set_channel(channel, state, now)
        notices.put(notice)
        if outcome != "retry":
            change: dict[str, Any] = {
                "channel": channel,
                "target": delivery.target,
                "attempts": attempts,
            }
            if error:
                change["error"] = error
            await self.emit(
                uow, "sent" if outcome == "sent" else "failed", notice, {**change, "at": now}
            )
        return True

    # -- 签收 --------------------------------------------------------------------------------

    async def acknowledge(
        self, uow: UnitOfWork, nid: str, *, unit: str, by: str, note: str | None
    ) -> Notice:
        """签收 by the recipient unit: idempotent; cancels a pending escalation."""
        notices = storage.notices(uow)
        notice = await notices.get(nid)
        if notice is None:
            raise NotFound(f"notice {nid} does not exist")
        if unit != notice.recipient_unit:
            raise Forbidden(f"notice {nid} is addressed to {notice.recipient_unit}, not {unit}")
        now = uow.now()
        if not notice.acknowledge(by=by, note=note, at=now):
            return notice
        notices.put(notice)
        await uow.cancel(escalation_timer(nid))
        await self.emit(
            uow,
            "acknowledged",
            notice,
            {"by": by, "unit": unit, "at": now, "late": notice.acknowledged_late},
        )
        return notice

    # -- escalation ------------------------------------------------------------------------

    async def on_escalation_due(self, timer: Document, uow: UnitOfWork) -> None:
        """签收期限 passed: if still unacknowledged, one 通报 to the supervising level."""
        nid = str(timer.get("payload", {}).get("notice_id", ""))
        notices = storage.notices(uow)
        notice = await notices.get(nid)
        if notice is None:
            log.warning("escalation timer for a missing notice", notice=nid)
            return
        if not notice.needs_escalation():
            return
        to_unit = supervising_unit(notice.recipient_unit)
        request = NotificationRequest(
            idempotency_key=escalation_key(nid),
            kind=NoticeKind.ESCALATION,
            recipient_unit=to_unit,
            district=notice.district,
            subject_type=notice.subject_type,
            subject_id=notice.subject_id,
            summary=notice.summary,
            context={"escalation_of": nid, "original_doc_number": notice.doc_number},
            requested_by=REQUESTED_BY,
        )
        escalation = await self.issue(request, uow, original=notice)
        esc_id = notice_id(request.idempotency_key)
        now = uow.now()
        notice.escalate(to=to_unit, escalation_notice_id=esc_id, at=now)
        notices.put(notice)
        await self.emit(
            uow,
            "escalated",
            notice,
            {
                "to": to_unit,
                "at": now,
                "escalation_notice_id": esc_id,
                "escalation_doc_number": escalation.doc_number if escalation else None,
                "ack_deadline": notice.ack_deadline,
            },
        )

    # -- supervision letters: the reply and its deadline ----------------------------------

    async def record_reply(
        self, uow: UnitOfWork, nid: str, *, unit: str, by: str, content: str
    ) -> Letter:
        """书面回复 to a letter (the recipient; a 移送函's feedback: its issuing bureau)."""
        letters = storage.letters(uow)
        letter = await letters.get(nid)
        if letter is None:
            raise NotFound(f"letter {nid} does not exist")
        if not letter.may_reply(unit):
            raise Forbidden(f"letter {nid} is answered by {letter.recipient_unit}, not {unit}")
        now = uow.now()
        if not letter.record_reply(unit=unit, by=by, content=content, at=now):
            raise Conflict(f"letter {nid} was already answered")
        letters.put(letter)
        await uow.cancel(reply_timer(nid))
        notice = await storage.notices(uow).get(nid)
        if notice is not None:
            reply = letter.reply.model_dump() if letter.reply else {}
            await self.emit(uow, "replied", notice, {**reply, "reply_due": letter.reply_due})
        return letter

    async def on_letter_reply_due(self, timer: Document, uow: UnitOfWork) -> None:
        """Reply deadline passed unanswered: one 通报 to the level above the issuer (the city
        bureau for a district's letter) and, for an enforcement unit, an overdue lead."""
        nid = str(timer.get("payload", {}).get("notice_id", ""))
        letters = storage.letters(uow)
        letter = await letters.get(nid)
        notice = await storage.notices(uow).get(nid)
        if letter is None or notice is None:
            log.warning("reply timer for a missing letter", notice=nid)
            return
        if not letter.needs_escalation():
            return
        to_unit = supervising_unit(letter.issuer)
        due = cn_datetime(utc(letter.reply_due))
        reason = f"{letter.recipient_name}未在{due}前回复《{letter.title}》（{letter.doc_number}）"
        request = NotificationRequest(
            idempotency_key=letter_escalation_key(nid),
            kind=NoticeKind.ESCALATION,
            recipient_unit=to_unit,
            district=letter.district,
            subject_type=letter.subject_type,
            subject_id=letter.subject_id,
            summary=letter.summary,
            context={"escalation_of": nid, "original_doc_number": letter.doc_number},
            requested_by=REQUESTED_BY,
        )
        await self.issue(request, uow, original=notice, overdue_letter=letter)
        esc_id = notice_id(request.idempotency_key)
        now = uow.now()
        letter.escalate(to=to_unit, escalation_notice_id=esc_id, at=now)
        letters.put(letter)
        if letter.kind is not NoticeKind.TRANSFER:
            await uow.raise_lead(
                SupervisionLead(
                    lead_id=SupervisionLead.make_id(LeadKind.OVERDUE, "letter", nid),
                    kind=LeadKind.OVERDUE,
                    district=letter.district,
                    unit=letter.recipient_unit,
                    subject_type=letter.subject_type,
                    subject_id=letter.subject_id,
                    summary=reason,
                    evidence={
                        "letter_id": nid,
                        "doc_number": letter.doc_number,
                        "reply_due": to_jsonable_python(letter.reply_due),
                    },
                    raised_at=now,
                    raised_by=REQUESTED_BY,
                )
            )
        await self.emit(
            uow,
            "reply_overdue",
            notice,
            {"to": to_unit, "at": now, "escalation_notice_id": esc_id, "reason": reason},
        )

    # -- resend ----------------------------------------------------------------------------

    async def resend(
        self, uow: UnitOfWork, nid: str, channels: list[Channel] | None
    ) -> list[Delivery]:
        """Queue the notice again on some (default: every external) channel."""
        notices = storage.notices(uow)
        notice = await notices.get(nid)
        if notice is None:
            raise NotFound(f"notice {nid} does not exist")
        recipient = self._recipient(notice.recipient_unit)
        wanted = channels or notice.external_channels()
        if not wanted:
            raise Conflict(f"notice {nid} has no external channel; the inbox always holds it")
        now = uow.now()
        jobs = storage.deliveries(uow)
        queued: list[Delivery] = []
        for channel in dict.fromkeys(wanted):
            if channel is Channel.INBOX:
                raise Conflict("the inbox always holds the notice; nothing to resend")
            if channel.value not in notice.channels:
                raise Conflict(f"{recipient.unit} has no {channel.value} channel")
            current = await jobs.get(storage.delivery_id(nid, channel.value))
            if current is None:
                state, job = self._plan_delivery(nid, recipient, channel)
                if job is None and channels is None:
                    continue  # resending "everything": a channel that cannot deliver stays as is
                if job is None:
                    raise Conflict(
                        f"{channel.value} cannot deliver to {recipient.unit}: {state.reason}"
                    )
                storage.add_deliveries(uow, [job])
                queued.append(job)
            else:
                if current.being_attempted(wall_now()):
                    raise Conflict(
                        f"{channel.value} delivery of {nid} is being attempted right now"
                    )
                current.requeue(at=now, wall=wall_now())
                jobs.put(current)
                state = ChannelState.queued(current.target)
                queued.append(current)
            notice.channels[channel.value] = state
        if not queued:
            raise Conflict(f"no channel of notice {nid} can deliver in this deployment")
        notice.touch(now)
        notices.put(notice)
        return queued
