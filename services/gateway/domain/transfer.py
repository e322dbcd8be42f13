"""移送纪检监察: a lead disposed by transferring it to the 纪检监察机关 (seed 000: 对于执法监督
过程中发现的行政执法人员涉嫌职务违法或职务犯罪的问题线索，依规依纪依法及时移送纪检监察机关处理).

The disposal asks notify for a 移送函 from the lead's district bureau to that district's
纪委监委, with a reply (处理情况反馈) that notify tracks and escalates when none comes; the
lead records the letter as its follow-up. Pure: builds the request and the follow-up only.
"""

from __future__ import annotations

from typing import Any

from shared.city import discipline_body
from shared.contracts import NoticeKind, NotificationRequest, notice_id

TRANSFER_OUTCOME = "discipline"


def transfer_request(lead: dict[str, Any], note: str, by: str) -> NotificationRequest:
    """The 移送函 for ``lead`` (one per lead, however often the disposal is retried)."""
    district = str(lead["district"])
    lead_id = str(lead["_id"])
    summary = str(lead.get("summary") or "")
    return NotificationRequest(
        idempotency_key=f"gateway:transfer:{lead_id}",
        kind=NoticeKind.TRANSFER,
        recipient_unit=discipline_body(district),
        district=district,
        subject_type="lead",
        subject_id=lead_id,
        summary=(f"{summary}。{note}" if note else summary)[:2000] or lead_id,
        context={
            "issued_by": f"{district}-sfj",
            "issued_by_person": by,
            "lead_kind": lead.get("kind"),
            "unit": lead.get("unit"),
        },
        requested_by="gateway",
        reply_requested=True,
    )


def follow_up(request: NotificationRequest) -> dict[str, Any]:
    """What the lead keeps: the 移送函 to follow (``/v1/letters/{letter_id}`` on notify)."""
    return {
        "kind": "transfer",
        "letter_id": notice_id(request.idempotency_key),
        "recipient_unit": request.recipient_unit,
        "status": "awaiting_reply",
    }
