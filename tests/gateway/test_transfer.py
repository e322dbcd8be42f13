"""移送纪检监察 as a lead disposal, over the real servers: the gateway records the disposal
with its follow-up and asks notify for a 移送函, which notify issues to the district's
纪委监委 as a letter whose feedback it tracks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.gateway import storage
from services.gateway.domain.access import Role
from services.gateway.settings import GatewaySettings
from services.notify.main import build as build_notify
from services.notify.settings import NotifySettings
from shared.contracts import NOTIFY_REQUEST_TYPE, LeadKind, SupervisionLead
from shared.topics import NOTIFY_REQUESTS, SUPERVISION_LEADS
from tests.gateway.support import T0, bearer
from tests.gateway.test_ingest_api import gateway
from tests.helpers import ActingAs, KafkaTap, Publisher, eventually

pytestmark = pytest.mark.integration

JINGAN = "310106"


async def test_discipline_disposal_issues_a_transfer_letter_with_follow_up(
    settings_for: Callable[..., Any], publisher: Publisher, tap: Any
) -> None:
    """Seed 000_ea473ff1d8cb02b8.txt: “对于执法监督过程中发现的行政执法人员涉嫌职务违法或职务犯罪
    的问题线索，依规依纪依法及时移送纪检监察机关处理”."""
    settings: GatewaySettings = settings_for(GatewaySettings)
    notify_settings: NotifySettings = settings_for(NotifySettings)
    requests: KafkaTap = await tap(settings.topic_prefix + NOTIFY_REQUESTS.name)
    lead = SupervisionLead(
        lead_id=SupervisionLead.make_id(LeadKind.FINE_ANOMALY, "310106-cgzf", "2026-02"),
        kind=LeadKind.FINE_ANOMALY,
        district=JINGAN,
        unit="310106-cgzf",
        subject_type="unit",
        subject_id="310106-cgzf:2026-02",
        summary="罚没款异常增长，涉嫌趋利性执法",
        raised_at=T0,
        raised_by="penalty",
    )
    async with (
        gateway(settings) as (svc, client),
        build_notify(notify_settings).running() as notify,
    ):
        await publisher.event(svc.topic(SUPERVISION_LEADS), lead.to_event("/jiandu/penalty"))

        async def raised() -> bool:
            return await svc.db[storage.LEADS].count_documents({"_id": lead.lead_id}) == 1

        await eventually(raised)
        jingan = bearer(settings, Role.DISTRICT_SUPERVISOR, district=JINGAN)
        body = {"outcome": "discipline", "note": "执法人员涉嫌违规收受好处"}
        done = await client.post(f"/v1/leads/{lead.lead_id}/dispose", json=body, headers=jingan)
        events = await requests.wait_for_events(
            lambda es: any(e.type == NOTIFY_REQUEST_TYPE for e in es)
        )
        letter_id = done.json()["disposition"]["follow_up"]["letter_id"]

        async def issued() -> bool:
            return await notify.db["letters"].count_documents({"_id": letter_id}) == 1

        await eventually(issued)
        transport = httpx.ASGITransport(app=notify.http_app(manage_lifecycle=False))
        auth = ActingAs(notify.settings, Role.DISTRICT_SUPERVISOR, district=JINGAN)
        async with httpx.AsyncClient(transport=transport, base_url="http://n", auth=auth) as n:
            letter = (await n.get(f"/v1/letters/{letter_id}")).json()
            notice = (await n.get(f"/v1/notices/{letter_id}")).json()
    assert done.status_code == 200, done.text
    disposition = done.json()["disposition"]
    assert done.json()["status"] == "disposed" and disposition["outcome"] == "discipline"
    assert disposition["follow_up"]["recipient_unit"] == "310106-jjjc"
    assert disposition["follow_up"]["status"] == "awaiting_reply"
    request = next(e for e in events if e.type == NOTIFY_REQUEST_TYPE)
    assert request.data["kind"] == "transfer" and request.data["reply_requested"] is True
    assert request.data["subject_type"] == "lead" and request.data["subject_id"] == lead.lead_id
    assert letter["kind"] == "transfer" and letter["status"] == "awaiting_reply"
    assert letter["issuer"] == "310106-sfj" and letter["recipient_name"] == "静安区纪委监委"
    assert letter["doc_number"].startswith("静司移〔")  # numbered by the 静安 bureau
    assert "执法人员涉嫌违规收受好处" in notice["text"]
