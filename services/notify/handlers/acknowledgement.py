"""签收 and its deadline: the recipient acknowledges a notice, or the level above hears of it.

A notice not acknowledged by its 签收期限 causes one 通报 (escalation notice) to the
supervising level; 签收 before that cancels the timer.
"""

from __future__ import annotations

import structlog

from services.notify import storage
from services.notify.domain.aggregates import Notice
from services.notify.domain.notice import escalation_key
from services.notify.handlers.issuing import NoticeIssuer, escalation_timer
from shared.api import Forbidden, NotFound
from shared.city import supervising_unit
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


class Acknowledgements(NoticeIssuer):
    """签收 by the recipient unit; escalation when the 签收期限 passes without it."""

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
        esc_id, escalation = await self.issue_escalation(uow, escalation_key(nid), to_unit, notice)
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
