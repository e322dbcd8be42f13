"""Supervision letters on the real embedded Kafka and MongoDB: issued by a supervisor through
the API, answered by the unit, escalated by a durable timer when unanswered."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from services.notify.main import build
from services.notify.settings import NotifySettings
from shared.clock import ManualClock
from shared.contracts import LEAD_TYPE
from shared.envelope import Envelope
from shared.identity import Role
from shared.service import Service
from shared.topics import NOTIFY_EVENTS, SUPERVISION_LEADS
from shared.workcalendar import CST
from tests.helpers import ActingAs, KafkaTap

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 3, 2, 9, 30, tzinfo=CST)  # a Monday
UNIT = "310106-cgzf"
BUREAU = "310106-sfj"
CITY = "310000-sfj"
SUPERVISOR = {"role": Role.DISTRICT_SUPERVISOR, "district": "310106", "sub": "李监督"}

Settings = Callable[..., NotifySettings]


@asynccontextmanager
async def client(svc: Service, role: Role, **claims: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=svc.http_app(manage_lifecycle=False))
    auth = ActingAs(svc.settings, role, **claims)
    async with httpx.AsyncClient(transport=transport, base_url="http://n", auth=auth) as c:
        yield c


def letter_body(**overrides: Any) -> dict[str, Any]:
    return {
        "kind": "supervision_letter",
        "recipient_unit": UNIT,
        "subject_type": "lead",
        "subject_id": "lead-bounce-1",
        "summary": "该工单被退单3次，占道经营问题仍未解决",
        "items": ["退单理由不成立"],
        "request_id": "req-1",
        **overrides,
    }


def of(nid: str, verb: str) -> Callable[[Envelope], bool]:
    return lambda e: e.type == f"jiandu.notify.notice.{verb}" and e.partitionkey == nid


async def test_supervisor_issues_a_letter_once_and_the_unit_replies_in_time(
    settings_for: Settings, tap: Any
) -> None:
    settings = settings_for(NotifySettings)
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    clock = ManualClock(START)
    async with build(settings, clock=clock).running() as svc:
        assert svc.timers is not None
        async with client(svc, **SUPERVISOR) as sup:
            first = await sup.post("/v1/letters", json=letter_body())
            again = await sup.post("/v1/letters", json=letter_body())
            other = await sup.post("/v1/letters", json=letter_body(recipient_unit="310101-cgzf"))
            not_letter = await sup.post("/v1/letters", json=letter_body(kind="reminder"))
            lid = first.json()["id"]
            notice = (await sup.get(f"/v1/notices/{lid}")).json()
        async with client(svc, Role.UNIT_OFFICER, unit=UNIT, sub="张三") as officer:
            forbidden = await officer.post("/v1/letters", json=letter_body(request_id="x"))
            clock.advance(dt.timedelta(days=2))
            reply = await officer.post(f"/v1/letters/{lid}/reply", json={"content": "已核查处理"})
            twice = await officer.post(f"/v1/letters/{lid}/reply", json={"content": "again"})
            listed = (await officer.get("/v1/letters", params={"status": "replied"})).json()
        async with client(svc, Role.UNIT_OFFICER, unit="310106-scjg") as stranger:
            hidden = await stranger.get(f"/v1/letters/{lid}")
        clock.set(dt.datetime(2026, 3, 20, tzinfo=CST))
        fired_kinds = []
        while await svc.timers.tick():
            fired_kinds.append(1)
        events = await out.wait_for_events(lambda es: any(of(lid, "replied")(e) for e in es))
        timer = await svc.db["timers"].find_one({"_id": f"notify:letter-reply:{lid}"})
        notices = await svc.db["notices"].count_documents(
            {"subject_id": "lead-bounce-1", "kind": "supervision_letter"}
        )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["doc_number"] == "静司督〔2026〕1号" and body["issuer"] == BUREAU
    assert body["issued_by"] == "李监督" and body["status"] == "awaiting_reply"
    # 5 days ≤ 7: working days (行政处罚法第八十五条) → Monday 2026-03-09, close of business
    assert dt.datetime.fromisoformat(body["reply_due"]) == dt.datetime(2026, 3, 9, 18, tzinfo=CST)
    assert again.status_code == 201 and again.json()["id"] == lid  # one letter per request id
    assert notices == 1
    assert other.status_code == 404  # another district's unit is out of the supervisor's scope
    assert not_letter.status_code == 422
    assert forbidden.status_code == 403  # a unit officer lacks SUPERVISE
    assert "2026年3月9日18时前将办理结果书面报送我局" in notice["text"]
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "replied" and reply.json()["reply"]["late"] is False
    assert reply.json()["reply"]["unit"] == UNIT and reply.json()["reply"]["by"] == "张三"
    assert twice.status_code == 409
    assert [item["id"] for item in listed["items"]] == [lid]
    assert hidden.status_code == 404
    assert timer is not None and timer["status"] == "cancelled"
    assert sum(1 for e in events if of(lid, "reply_overdue")(e)) == 0
    assert len(fired_kinds) == 1  # only the 签收 escalation (never acknowledged)


async def test_unanswered_letter_escalates_to_the_city_once_and_raises_a_lead(
    settings_for: Settings, tap: Any
) -> None:
    settings = settings_for(NotifySettings, letter_reply_days={"recommendation": 15})
    out: KafkaTap = await tap(settings.topic_prefix + NOTIFY_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    clock = ManualClock(START)
    async with build(settings, clock=clock).running() as svc:
        assert svc.timers is not None
        async with client(svc, **SUPERVISOR) as sup:
            issued = await sup.post(
                "/v1/letters", json=letter_body(kind="recommendation", subject_type="filing")
            )
            lid = issued.json()["id"]
        async with client(svc, Role.UNIT_OFFICER, unit=UNIT) as officer:
            ack = await officer.post(f"/v1/notices/{lid}/acknowledge", json={})
        due = dt.datetime.fromisoformat(issued.json()["reply_due"])
        clock.set(due - dt.timedelta(minutes=1))
        assert await svc.timers.tick() == 0
        clock.set(due + dt.timedelta(minutes=1))
        assert await svc.timers.tick() == 1
        clock.advance(dt.timedelta(days=60))
        assert await svc.timers.tick() == 0  # the 通报 to the city does not escalate again
        events = await out.wait_for_events(lambda es: any(of(lid, "reply_overdue")(e) for e in es))
        overdue = next(e for e in events if of(lid, "reply_overdue")(e))
        esc_id = overdue.data["change"]["escalation_notice_id"]
        lead_events = await leads.wait_for_events(
            lambda es: any(
                e.type == LEAD_TYPE and e.data["evidence"].get("letter_id") == lid for e in es
            )
        )
        async with client(svc, Role.CITY_SUPERVISOR) as city:
            letter = (await city.get(f"/v1/letters/{lid}")).json()
            escalation = (await city.get(f"/v1/notices/{esc_id}")).json()
        async with client(svc, Role.UNIT_OFFICER, unit=UNIT) as officer:
            late = await officer.post(f"/v1/letters/{lid}/reply", json={"content": "补报"})
    assert ack.status_code == 200
    # 15 days: calendar days → 2026-03-17, close of business
    assert due == dt.datetime(2026, 3, 17, 18, tzinfo=CST)
    assert overdue.data["change"]["to"] == CITY
    assert letter["status"] == "escalated" and letter["escalated_to"] == CITY
    assert escalation["recipient_unit"] == CITY and escalation["kind"] == "escalation"
    assert "逾期未回复监督建议书" in escalation["heading"]
    assert "要求其于2026年3月17日18时前书面回复" in escalation["text"]
    lead = next(e for e in lead_events if e.data["evidence"].get("letter_id") == lid)
    assert lead.data["kind"] == "overdue" and lead.data["unit"] == UNIT
    assert lead.data["subject_type"] == "filing"
    assert late.status_code == 200 and late.json()["reply"]["late"] is True


async def test_transfer_letter_goes_to_the_discipline_body_and_its_bureau_records_feedback(
    settings_for: Settings,
) -> None:
    """Seed 000: 问题线索依规依纪依法及时移送纪检监察机关处理 (移送函, with follow-up)."""
    settings = settings_for(NotifySettings)
    clock = ManualClock(START)
    async with build(settings, clock=clock).running() as svc:
        async with client(svc, **SUPERVISOR) as sup:
            issued = await sup.post(
                "/v1/letters",
                json=letter_body(kind="transfer", recipient_unit="310106-jjjc", request_id="t1"),
            )
            lid = issued.json()["id"]
            notice = (await sup.get(f"/v1/notices/{lid}")).json()
            feedback = await sup.post(f"/v1/letters/{lid}/reply", json={"content": "已立案审查"})
        timers = await svc.db["timers"].find({"subject": f"notice/{lid}"}).to_list()
    assert issued.status_code == 201, issued.text
    assert issued.json()["doc_number"] == "静司移〔2026〕1号"
    assert issued.json()["recipient_name"] == "静安区纪委监委"
    assert "现将该问题线索移送你单位处理" in notice["text"]
    # follow-up by the reply deadline only: no 签收 escalation for an outside body
    assert [t["kind"] for t in timers] == ["notify.letter_reply_due"]
    assert feedback.status_code == 200 and feedback.json()["reply"]["unit"] == BUREAU
