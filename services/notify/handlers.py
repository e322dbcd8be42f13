"""Event, timer and command handlers of the notify service.

Issuing a notice is one transaction: the notice (numbered from the atomic counter, text
rendered), its pending deliveries, its escalation timer and the ``created`` event commit
together or not at all. Nothing is sent inside it: the delivery worker
(:mod:`services.notify.delivery`) picks the pending deliveries up after commit, and each
outcome is recorded by :meth:`NotifyWorkflow.settle` in a transaction of its own.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import structlog
from pydantic_core import to_jsonable_python

from services.notify import storage
from services.notify.channels import unavailable_reason
from services.notify.domain.directory import DirectoryEntry, UnitDirectory, resolve_target
from services.notify.domain.notice import (
    EXTERNAL_CHANNELS,
    Channel,
    acknowledgement_deadline,
    cn_date,
    cn_datetime,
    counter_key,
    derive_status,
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
from shared.contracts import NoticeKind, NotificationRequest, parse_data
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.topics import NOTIFY_EVENTS
from shared.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    pass

T = TypeVar("T")
log = structlog.get_logger(__name__)

EVENT_PREFIX = "jiandu.notify.notice."
ESCALATION_DUE = "notify.escalation_due"
REQUESTED_BY = "notify"

Verb = Literal["created", "sent", "failed", "acknowledged", "escalated"]


def escalation_timer(nid: str) -> str:
    return f"notify:escalation:{nid}"


def wall_now() -> dt.datetime:
    """Delivery scheduling (leases, backoff) runs on real time, not the business clock."""
    return dt.datetime.now(dt.UTC)


def channel_states(doc: Document) -> dict[str, str]:
    return {ch: str(info.get("status")) for ch, info in doc.get("channels", {}).items()}


def status_of(doc: Document) -> str:
    return derive_status(
        channel_states(doc),
        acknowledged=doc.get("acknowledged_at") is not None,
        escalated=doc.get("escalated_at") is not None,
    )


def snapshot(doc: Document) -> dict[str, Any]:
    """The notice as events carry it (``id`` for ``_id``; channels reduced to their status)."""
    body = {k: v for k, v in doc.items() if k not in ("_id", "channels", "context")}
    return {
        "id": doc["_id"],
        "unit": doc["recipient_unit"],
        **to_jsonable_python(body),
        "channels": channel_states(doc),
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
        self, uow: UnitOfWork, verb: Verb, doc: Document, change: dict[str, Any]
    ) -> None:
        await uow.emit(
            Envelope(
                type=EVENT_PREFIX + verb,
                source=self.source,
                subject=f"notice/{doc['_id']}",
                district=doc["district"],
                partitionkey=doc["_id"],
                time=uow.now(),
                data={"notice": snapshot(doc), "change": to_jsonable_python(change)},
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
        original: Document | None = None,
    ) -> Document | None:
        """Create the notice for ``request`` unless its idempotency key already has one."""
        existing = await storage.get_notice(uow, notice_id(request.idempotency_key))
        if existing is not None:
            log.info(
                "duplicate notice request", key=request.idempotency_key, notice=existing["_id"]
            )
            return None
        recipient = self._recipient(request.recipient_unit)
        issuer = self.directory.issuer_for(recipient.unit, request.context.get("issued_by"))
        now = uow.now()
        nid = notice_id(request.idempotency_key)
        year = document_year(now)
        prefix = self.directory.issuer_prefix(issuer)
        ack_deadline = acknowledgement_deadline(
            now, request.deadline, self.settings.ack_working_days
        )
        title = title_of(request.kind)
        heading = title
        original_fields: OriginalNotice | None = None
        if original is not None:
            heading = f"关于{original['recipient_name']}逾期未签收{original['title']}的通报"
            original_fields = OriginalNotice(
                issuer_name=original["issuer_name"],
                recipient_name=original["recipient_name"],
                title=original["title"],
                doc_number=original["doc_number"],
                issued_date_cn=cn_date(utc(original["created_at"])),
                ack_deadline_cn=cn_datetime(utc(original["ack_deadline"])),
            )
        channels: dict[str, dict[str, Any]] = {
            Channel.INBOX.value: {"status": "sent", "target": recipient.unit, "sent_at": now}
        }
        deliveries: list[Document] = []
        for channel in recipient.channels:
            if channel not in EXTERNAL_CHANNELS:
                continue
            info, delivery = self._plan_delivery(nid, recipient, channel)
            channels[channel.value] = info
            if delivery is not None:
                deliveries.append(delivery)
        storage.add_deliveries(uow, deliveries)
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
            deadline_cn=cn_datetime(request.deadline) if request.deadline else None,
            ack_deadline_cn=cn_datetime(ack_deadline),
            issued_date_cn=cn_date(now),
            issued_datetime_cn=cn_datetime(now),
            items=context_items(request.context),
            contact=contact if isinstance(contact, str) else None,
            original=original_fields,
        )
        doc: Document = {
            "_id": nid,
            "idempotency_key": request.idempotency_key,
            "kind": request.kind.value,
            "title": title,
            "heading": heading,
            "doc_number": number,
            "year": year,
            "sequence": seq,
            "issuer": issuer.unit,
            "issuer_name": issuer.name,
            "recipient_unit": recipient.unit,
            "recipient_name": recipient.name,
            "district": request.district,
            "subject_type": request.subject_type,
            "subject_id": request.subject_id,
            "summary": request.summary,
            "context": request.context,
            "deadline": request.deadline,
            "ack_deadline": ack_deadline,
            "text": render(request.kind, fields),
            "channels": channels,
            "requested_by": request.requested_by,
            "request_event_id": request_event_id,
            "escalation_of": original["_id"] if original is not None else None,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "escalated_at": None,
            "escalated_to": None,
            "escalation_notice_id": None,
            "created_at": now,
            "updated_at": now,
        }
        doc["status"] = status_of(doc)
        storage.add_notice(uow, doc)
        await self.emit(
            uow,
            "created",
            doc,
            {
                "by": request.requested_by,
                "at": now,
                "idempotency_key": request.idempotency_key,
                "request_event_id": request_event_id,
            },
        )
        return doc

    def _plan_delivery(
        self, nid: str, recipient: DirectoryEntry, channel: Channel
    ) -> tuple[dict[str, Any], Document | None]:
        """The channel's initial state, and its delivery job when it can deliver at all."""
        target = resolve_target(
            recipient,
            channel,
            webhook_url_override=self.settings.webhook_url_override,
            webhook_urls=self.settings.webhook_urls,
        )
        reason = unavailable_reason(self.settings, channel, target)
        if reason is not None:
            return {"status": "skipped", "target": target, "reason": reason}, None
        info = {"status": "pending", "target": target, "attempts": 0}
        return info, {
            "_id": storage.delivery_id(nid, channel.value),
            "notice_id": nid,
            "channel": channel.value,
            "unit": recipient.unit,
            "target": target,
            "status": "pending",
            "attempts": 0,
            "resends": 0,
            "next_attempt_at": wall_now(),
            "claimed_by": None,
            "claim_until": None,
            "claim_token": None,
            "last_error": None,
            "sent_at": None,
            "failed_at": None,
            "history": [],
        }

    def _escalates(self, kind: NoticeKind, unit: str) -> bool:
        """Escalation notices are not escalated again, and the city bureau has no one above."""
        return (
            self.settings.escalation_enabled
            and kind is not NoticeKind.ESCALATION
            and supervising_unit(unit) != unit
        )

    # -- delivery outcomes -----------------------------------------------------------------

    async def settle(
        self,
        uow: UnitOfWork,
        delivery: Document,
        token: str,
        outcome: Literal["sent", "retry", "failed"],
        *,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
    ) -> bool:
        """Record one attempt; False when our claim was lost (another replica owns it now)."""
        now = uow.now()
        attempts = int(delivery["attempts"])
        changes: dict[str, Any] = {"last_error": error}
        if outcome == "sent":
            changes.update(status="sent", sent_at=now)
        elif outcome == "failed":
            changes.update(status="failed", failed_at=now)
        else:
            changes.update(next_attempt_at=retry_at or wall_now())
        settled = await storage.settle_delivery(
            uow,
            did=delivery["_id"],
            token=token,
            changes=changes,
            history={"attempt": attempts, "at": wall_now(), "outcome": outcome, "error": error},
        )
        if settled is None:
            return False
        channel = delivery["channel"]
        info: dict[str, Any] = {"target": delivery["target"], "attempts": attempts}
        if outcome == "sent":
            info.update(status="sent", sent_at=now)
        elif outcome == "failed":
            info.update(status="failed", error=error, failed_at=now)
        else:
            info.update(status="pending", error=error)
        notice = await storage.get_notice(uow, delivery["notice_id"])
        if notice is None:
            raise LookupError(delivery["notice_id"])
        notice["channels"][channel] = info
        doc = await storage.update_notice(
            uow,
            notice["_id"],
            {f"channels.{channel}": info, "status": status_of(notice), "updated_at": now},
        )
        if outcome != "retry":
            change = {"channel": channel, "target": delivery["target"], "attempts": attempts}
            if error:
                change["error"] = error
            await self.emit(
                uow, "sent" if outcome == "sent" else "failed", doc, {**change, "at": now}
            )
        return True

    # -- 签收 --------------------------------------------------------------------------------

    async def acknowledge(
        self, uow: UnitOfWork, nid: str, *, unit: str, by: str, note: str | None
    ) -> Document:
        """签收 by the recipient unit: idempotent; cancels a pending escalation."""
        notice = await storage.get_notice(uow, nid)
        if notice is None:
            raise NotFound(f"notice {nid} does not exist")
        if unit != notice["recipient_unit"]:
            raise Forbidden(f"notice {nid} is addressed to {notice['recipient_unit']}, not {unit}")
        if notice.get("acknowledged_at") is not None:
            return notice
        now = uow.now()
        late = now > utc(notice["ack_deadline"])
        notice.update(
            acknowledged_at=now, acknowledged_by=by, ack_note=note, acknowledged_late=late
        )
        doc = await storage.update_notice(
            uow,
            nid,
            {
                "acknowledged_at": now,
                "acknowledged_by": by,
                "ack_note": note,
                "acknowledged_late": late,
                "status": status_of(notice),
                "updated_at": now,
            },
        )
        await uow.cancel(escalation_timer(nid))
        await self.emit(uow, "acknowledged", doc, {"by": by, "unit": unit, "at": now, "late": late})
        return doc

    # -- escalation ------------------------------------------------------------------------

    async def on_escalation_due(self, timer: Document, uow: UnitOfWork) -> None:
        """签收期限 passed: if still unacknowledged, one 通报 to the supervising level."""
        nid = str(timer.get("payload", {}).get("notice_id", ""))
        notice = await storage.get_notice(uow, nid)
        if notice is None:
            log.warning("escalation timer for a missing notice", notice=nid)
            return
        if notice.get("acknowledged_at") is not None or notice.get("escalated_at") is not None:
            return
        to_unit = supervising_unit(notice["recipient_unit"])
        request = NotificationRequest(
            idempotency_key=escalation_key(nid),
            kind=NoticeKind.ESCALATION,
            recipient_unit=to_unit,
            district=notice["district"],
            subject_type=notice["subject_type"],
            subject_id=notice["subject_id"],
            summary=notice["summary"],
            context={"escalation_of": nid, "original_doc_number": notice["doc_number"]},
            requested_by=REQUESTED_BY,
        )
        escalation = await self.issue(request, uow, original=notice)
        esc_id = notice_id(request.idempotency_key)
        now = uow.now()
        notice.update(escalated_at=now)
        doc = await storage.update_notice(
            uow,
            nid,
            {
                "escalated_at": now,
                "escalated_to": to_unit,
                "escalation_notice_id": esc_id,
                "status": status_of(notice),
                "updated_at": now,
            },
        )
        await self.emit(
            uow,
            "escalated",
            doc,
            {
                "to": to_unit,
                "at": now,
                "escalation_notice_id": esc_id,
                "escalation_doc_number": escalation["doc_number"] if escalation else None,
                "ack_deadline": notice["ack_deadline"],
            },
        )

    # -- resend ----------------------------------------------------------------------------

    async def resend(
        self, uow: UnitOfWork, nid: str, channels: list[Channel] | None
    ) -> list[Document]:
        """Queue the notice again on some (default: every external) channel."""
        notice = await storage.get_notice(uow, nid)
        if notice is None:
            raise NotFound(f"notice {nid} does not exist")
        recipient = self._recipient(notice["recipient_unit"])
        wanted = channels or [Channel(c) for c in notice["channels"] if c != Channel.INBOX.value]
        if not wanted:
            raise Conflict(f"notice {nid} has no external channel; the inbox always holds it")
        now = uow.now()
        queued: list[Document] = []
        for channel in dict.fromkeys(wanted):
            if channel is Channel.INBOX:
                raise Conflict("the inbox always holds the notice; nothing to resend")
            if channel.value not in notice["channels"]:
                raise Conflict(f"{recipient.unit} has no {channel.value} channel")
            did = storage.delivery_id(nid, channel.value)
            current = await storage.get_delivery(uow, did)
            if current is None:
                info, job = self._plan_delivery(nid, recipient, channel)
                if job is None and channels is None:
                    continue  # resending "everything": a channel that cannot deliver stays as is
                if job is None:
                    raise Conflict(
                        f"{channel.value} cannot deliver to {recipient.unit}: {info['reason']}"
                    )
                storage.add_deliveries(uow, [job])
                queued.append(job)
            else:
                claim_until = current.get("claim_until")
                if (
                    current["status"] == "pending"
                    and claim_until is not None
                    and utc(claim_until) > wall_now()
                ):
                    raise Conflict(
                        f"{channel.value} delivery of {nid} is being attempted right now"
                    )
                reset = {
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": wall_now(),
                    "claimed_by": None,
                    "claim_until": None,
                    "claim_token": None,
                    "last_error": None,
                    "resent_at": now,
                }
                current.update(reset, resends=int(current.get("resends", 0)) + 1)
                storage.put_delivery(uow, current)
                info = {"status": "pending", "target": current["target"], "attempts": 0}
                queued.append(current)
            notice["channels"][channel.value] = info
        if not queued:
            raise Conflict(f"no channel of notice {nid} can deliver in this deployment")
        await storage.update_notice(
            uow,
            nid,
            {
                **{f"channels.{d['channel']}": notice["channels"][d["channel"]] for d in queued},
                "status": status_of(notice),
                "updated_at": now,
            },
        )
        return queued
