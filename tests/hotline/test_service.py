"""The hotline service on the real embedded Kafka and MongoDB, with a shared ManualClock."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.hotline.main import build
from services.hotline.settings import HotlineSettings
from shared.city import load_city
from shared.clock import ManualClock
from shared.contracts import LEAD_TYPE, LeadKind, SupervisionLead
from shared.envelope import Envelope
from shared.outbox import outbox_events
from shared.service import Service
from shared.timers import TIMERS
from shared.topics import (
    HOTLINE_EVENTS,
    INGEST_ENFORCEMENT,
    INGEST_HOTLINE,
    NOTIFY_REQUESTS,
    SUPERVISION_LEADS,
)
from shared.workcalendar import CST
from tests.helpers import (
    KafkaTap,
    Publisher,
    api_client,
    applied_ids,
    eventually,
    key_on_same_partition,
)

pytestmark = pytest.mark.integration

Settings = Callable[..., HotlineSettings]

START = dt.datetime(2025, 3, 3, 10, 0, tzinfo=CST)  # a Monday
JINGAN = load_city().district("310106")
assert JINGAN is not None
STREET = JINGAN.streets[1]
EV = "jiandu.hotline.complaint."


def created(order_id: str, *, received: dt.datetime = START, **over: Any) -> Envelope:
    data: dict[str, Any] = {
        "order_id": order_id,
        "channel": "phone",
        "received_at": received.isoformat(),
        "district": "310106",
        "street": STREET.name,
        "address": "上海市静安区南京西路1000号",
        "category": "ZDJY",
        "kind": "complaint",
        "description": "市民反映南京西路1000号附近有流动摊贩占用人行道经营水果",
        "complainant": {"name": "王伟", "phone": "13800138000"},
    }
    data.update(over)
    return Envelope(
        type="gov.12345.workorder.created",
        source="/12345/platform",
        district=data["district"],
        subject=f"workorder/{order_id}",
        partitionkey=order_id,
        data=data,
    )


def updated(order_id: str, action: str, unit: str, at: dt.datetime, **extra: Any) -> Envelope:
    return Envelope(
        type="gov.12345.workorder.updated",
        source="/12345/platform",
        district=unit[:6],
        subject=f"workorder/{order_id}",
        partitionkey=order_id,
        data={"order_id": order_id, "action": action, "by_unit": unit, "at": at.isoformat(),
              **extra},
    )  # fmt: skip


def of(tap: KafkaTap, order_id: str, verb: str | None = None) -> list[Envelope]:
    return [
        e
        for e in tap.events()
        if e.partitionkey == order_id and (verb is None or e.type == EV + verb)
    ]


def leads(tap: KafkaTap, kind: LeadKind, order_id: str) -> list[Envelope]:
    return [
        e
        for e in tap.events()
        if e.type == LEAD_TYPE and e.data["kind"] == kind.value and e.data["subject_id"] == order_id
    ]


async def drained(*services: Service) -> bool:
    for svc in services:
        assert svc.relay is not None
        if await svc.relay.pending() != 0:
            return False
    return True


async def outbox_count(svc: Service, type_: str, order_id: str) -> int:
    docs = await outbox_events(svc.db, type=type_)
    return sum(1 for d in docs if order_id.encode() in d["key"])


async def test_created_work_order_is_routed_and_dispatched(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(HotlineSettings)
    out: KafkaTap = await tap(settings.topic_prefix + HOTLINE_EVENTS.name)
    notices: KafkaTap = await tap(settings.topic_prefix + NOTIFY_REQUESTS.name)
    clock = ManualClock(START)
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_HOTLINE)
        await publisher.event(topic, created("GD-R1"))
        # No category, text about oil fumes: classified by keywords, a district-level matter.
        await publisher.event(
            topic,
            created("GD-R2", category=None, description="楼下烧烤店油烟直排，未安装油烟净化设施"),
        )
        await publisher.event(
            topic, created("GD-R3", category=None, description="咨询社保卡补办需要带什么材料")
        )
        orders = ("GD-R1", "GD-R2", "GD-R3")
        await out.wait_for_events(lambda es: all(of(out, o, "routed") for o in orders))
        async with api_client(svc) as client:
            detail = (await client.get("/v1/complaints/GD-R1")).json()
            listed = (await client.get("/v1/complaints", params={"district": "310106"})).json()
            later = (
                await client.get("/v1/complaints", params={"received_from": "2025-03-03T03:00:00Z"})
            ).json()
            by_unit = (await client.get("/v1/complaints", params={"unit": "310106-sthj"})).json()
            missing = await client.get("/v1/complaints/NOPE")
            # Not acknowledged within two office hours: each holder gets a 催办 reminder.
            clock.set(dt.datetime(2025, 3, 3, 11, 59, tzinfo=CST))
            assert await svc.timers.tick() == 0
            clock.set(dt.datetime(2025, 3, 3, 12, 0, tzinfo=CST))
            assert await svc.timers.tick() == 3
            await notices.wait_for_events(lambda es: len(es) == 3)
            late = (await client.get("/v1/complaints/GD-R1")).json()
    routed = of(out, "GD-R1", "routed")[0]
    assert routed.data["complaint"]["unit"] == STREET.unit.id
    assert routed.data["complaint"]["status"] == "dispatched"
    assert routed.data["change"]["level"] == "street"
    assert of(out, "GD-R1", "registered")[0].data["complaint"]["matter"] == "ZDJY"
    fumes = of(out, "GD-R2", "routed")[0].data["complaint"]
    assert (fumes["matter"], fumes["classified_by"], fumes["unit"]) == (
        "YYWR",
        "keywords",
        "310106-sthj",
    )
    assert of(out, "GD-R3", "routed")[0].data["complaint"]["unit"] == "310106-sfj"  # triage
    assert [e["verb"] for e in detail["timeline"]] == ["registered", "routed"]
    assert detail["ack_due"] == "2025-03-03T04:00:00Z"  # 12:00 CST, two office hours later
    assert detail["due"] == "2025-03-20T10:00:00Z"  # 13 working days, 18:00 CST
    assert listed["total"] == 3 and missing.status_code == 404
    assert later["total"] == 0  # all three were received at 10:00 CST (02:00Z)
    assert [i["id"] for i in by_unit["items"]] == ["GD-R2"]
    reminders = {e.data["subject_id"]: e.data for e in notices.events()}
    assert reminders["GD-R1"]["recipient_unit"] == STREET.unit.id
    assert reminders["GD-R3"]["recipient_unit"] == "310106-sfj"
    assert {r["kind"] for r in reminders.values()} == {"reminder"}
    assert (
        late["ack_late"] and not late["overdue"] and late["timeline"][-1]["verb"] == "ack_overdue"
    )
    assert of(out, "GD-R1", "overdue") == []


async def test_redelivered_created_event_changes_nothing(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(HotlineSettings)
    out: KafkaTap = await tap(settings.topic_prefix + HOTLINE_EVENTS.name)
    async with build(settings, clock=ManualClock(START)).running() as svc:
        topic = svc.topic(INGEST_HOTLINE)
        first = created("GD-D1")
        await publisher.event(topic, first)
        await out.wait_for_events(lambda es: bool(of(out, "GD-D1", "routed")))
        before = await svc.db["complaints"].find_one({"_id": "GD-D1"})
        await publisher.event(topic, first)  # the same event again
        resent = created("GD-D1", description="同一工单再次推送，内容略有不同")  # new event id
        await publisher.event(topic, resent)
        marker = key_on_same_partition("GD-D1", INGEST_HOTLINE.partitions, "GD-M")
        # behind them on their partition, at another place (not a 重复件 of GD-D1)
        await publisher.event(topic, created(marker, address="上海市静安区延安中路1号"))
        await out.wait_for_events(lambda es: bool(of(out, marker, "routed")))
        await eventually(lambda: drained(svc))
        after = await svc.db["complaints"].find_one({"_id": "GD-D1"})
        inbox = len(await applied_ids(svc.db))
    assert after == before
    assert len(of(out, "GD-D1")) == 2  # registered + routed, once
    assert inbox == 3  # the re-sent order was consumed (and ignored), the duplicate was not


async def test_returned_twice_raises_exactly_one_bounce_lead(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(HotlineSettings)
    out: KafkaTap = await tap(settings.topic_prefix + HOTLINE_EVENTS.name)
    lead_tap: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    async with build(settings, clock=ManualClock(START)).running() as svc:
        topic = svc.topic(INGEST_HOTLINE)
        oid = "GD-B1"
        street_team = STREET.unit.id
        await publisher.event(topic, created(oid))
        await out.wait_for_events(lambda es: bool(of(out, oid, "routed")))
        await publisher.event(
            topic, updated(oid, "returned", street_team, START + dt.timedelta(hours=1),
                           reason="经核实，该地址不在本辖区范围内")
        )  # fmt: skip
        await out.wait_for_events(lambda es: len(of(out, oid, "returned")) == 1)
        assert leads(lead_tap, LeadKind.BOUNCE, oid) == []
        # 12345 hands it to the district department, which returns it too (2nd return).
        await publisher.event(
            topic, updated(oid, "returned", "310106-cgzf", START + dt.timedelta(hours=2),
                           reason="该事项属于赋权街镇事项，请街道处理")
        )  # fmt: skip
        await lead_tap.wait_for_events(lambda es: bool(leads(lead_tap, LeadKind.BOUNCE, oid)))
        # A third return must not raise another one.
        await publisher.event(
            topic, updated(oid, "returned", street_team, START + dt.timedelta(hours=3),
                           reason="地址信息不全")
        )  # fmt: skip
        await out.wait_for_events(lambda es: len(of(out, oid, "returned")) == 3)
        await eventually(lambda: drained(svc))
        doc = await svc.db["complaints"].find_one({"_id": oid})
        lead_outbox = await outbox_count(
            svc, LEAD_TYPE, SupervisionLead.make_id(LeadKind.BOUNCE, oid)
        )
    bounce = leads(lead_tap, LeadKind.BOUNCE, oid)
    assert len(bounce) == 1 and lead_outbox == 1
    assert bounce[0].data["lead_id"] == SupervisionLead.make_id(LeadKind.BOUNCE, oid)
    assert bounce[0].data["evidence"]["returns"] == 2
    assert doc is not None and doc["returns"] == 3 and doc["status"] == "dispatched"
    assert [e.data["change"]["unit"] for e in of(out, oid, "returned")] == [
        street_team, "310106-cgzf", street_team,
    ]  # fmt: skip


async def test_overdue_timer_fires_once_across_two_instances_and_survives_a_restart(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    # A short relay lease: a stopped replica's final outbox flush re-takes the lease, and
    # the restarted replica would otherwise wait out the default 15 s before publishing.
    settings_a = settings_for(HotlineSettings, instance_id="hotline-a", lease_s=2.0)
    settings_b = settings_for(HotlineSettings, instance_id="hotline-b", lease_s=2.0)
    out: KafkaTap = await tap(settings_a.topic_prefix + HOTLINE_EVENTS.name)
    notices: KafkaTap = await tap(settings_a.topic_prefix + NOTIFY_REQUESTS.name)
    lead_tap: KafkaTap = await tap(settings_a.topic_prefix + SUPERVISION_LEADS.name)
    clock = ManualClock(START)
    one, two = "GD-T1", "GD-T2"
    # Consultations: due in 3 working days, Thursday 2025-03-06 18:00.
    async with build(settings_a, clock=clock).running() as a:
        topic = a.topic(INGEST_HOTLINE)
        for oid in (one, two):
            await publisher.event(topic, created(oid, kind="consultation"))
            await out.wait_for_events(lambda es, o=oid: bool(of(out, o, "routed")))
            await publisher.event(
                topic, updated(oid, "acknowledged", STREET.unit.id, START + dt.timedelta(hours=1))
            )
            await out.wait_for_events(lambda es, o=oid: bool(of(out, o, "acknowledged")))
        async with build(settings_b, clock=clock).running() as b:
            clock.set(dt.datetime(2025, 3, 6, 17, 59, tzinfo=CST))
            assert await asyncio.gather(a.timers.tick(), b.timers.tick()) == [0, 0]
            clock.set(dt.datetime(2025, 3, 7, 9, 0, tzinfo=CST))
            fired = await asyncio.gather(a.timers.tick(), b.timers.tick(), a.timers.tick())
            assert sum(fired) == 2  # one timer per complaint, each fired by one replica
            await out.wait_for_events(lambda es: all(of(out, o, "overdue") for o in (one, two)))
            async with api_client(a) as client:  # the other one is answered, late
                answered = await client.post(
                    f"/v1/complaints/{two}/resolve",
                    json={"unit": STREET.unit.id, "by": "郑", "outcome": "已电话答复来电人"},
                )
            assert answered.status_code == 200, answered.text
            await eventually(lambda: drained(a, b))
            timers = await a.db[TIMERS].find({"kind": "hotline.resolve_due"}).to_list()
    assert sorted(t["fired_count"] for t in timers) == [1, 1]
    assert {len(of(out, o, "overdue")) for o in (one, two)} == {1}
    got = await notices.wait_for_events(
        lambda es: sum(1 for e in es if e.data["kind"] == "reminder") >= 2
    )
    reminders = [e for e in got if e.data["kind"] == "reminder"]
    assert sorted(e.data["subject_id"] for e in reminders) == [one, two]

    # Restart between due time and firing: the escalation of GD-T1 is due at the close of
    # the 5th working day after the deadline (Thursday 2025-03-13); the service is down then.
    clock.set(dt.datetime(2025, 3, 13, 19, 0, tzinfo=CST))
    async with build(settings_b, clock=clock).running() as b:
        assert await b.timers.tick() == 1
        assert await b.timers.tick() == 0
        await out.wait_for_events(lambda es: bool(of(out, one, "escalated")))
        await lead_tap.wait_for_events(lambda es: bool(leads(lead_tap, LeadKind.OVERDUE, one)))
        await eventually(lambda: drained(b))
    assert len(of(out, one, "escalated")) == 1 and of(out, two, "escalated") == []
    got = await notices.wait_for_events(lambda es: any(e.data["kind"] == "escalation" for e in es))
    escalations = [e for e in got if e.data["kind"] == "escalation"]
    assert [e.data["subject_id"] for e in escalations] == [one]
    assert escalations[0].data["context"]["days_overdue"] == 5
    assert len(leads(lead_tap, LeadKind.OVERDUE, one)) == 1


async def test_unit_actions_over_http_with_conflicts_and_case_not_opened(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(HotlineSettings, case_deadline_days=30)
    out: KafkaTap = await tap(settings.topic_prefix + HOTLINE_EVENTS.name)
    lead_tap: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    clock = ManualClock(START)
    target_a = "上海鑫源餐饮管理有限公司（91310106MA1FL0XX3K）"
    target_b = "上海恒盛餐饮有限公司（91310106MAF0WTCD37）"
    fumes = "餐饮店油烟直排，要求环保部门查处"
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_HOTLINE)
        await publisher.event(
            topic,
            created(
                "GD-H1",
                category="YYWR",
                target=target_a,
                description=fumes,
                address="静安区万荣路1号",
            ),
        )
        await publisher.event(
            topic,
            created(
                "GD-H2",
                category="YYWR",
                target=target_b,
                description=fumes,
                address="静安区万荣路2号",
            ),
        )
        await out.wait_for_events(lambda es: all(of(out, o, "routed") for o in ("GD-H1", "GD-H2")))
        unit = "310106-sthj"
        async with api_client(svc) as client:
            url = "/v1/complaints/GD-H1"
            early = await client.post(
                f"{url}/resolve", json={"unit": unit, "by": "赵", "outcome": "x"}
            )
            wrong = await client.post(
                f"{url}/acknowledge", json={"unit": "310106-cgzf", "by": "钱"}
            )
            ack = await client.post(f"{url}/acknowledge", json={"unit": unit, "by": "赵"})
            again = await client.post(f"{url}/acknowledge", json={"unit": unit, "by": "赵"})
            ext = await client.post(
                f"{url}/extension",
                json={"unit": unit, "by": "赵", "days": 3, "reason": "需联合执法"},
            )
            self_decide = await client.post(
                f"{url}/extension/decision", json={"unit": unit, "by": "赵", "approved": True}
            )
            decided = await client.post(
                f"{url}/extension/decision",
                json={"unit": "310106-sfj", "by": "孙", "approved": True},
            )
            deadline_timers = {
                t["status"]: t["due"]
                for t in await svc.db[TIMERS]
                .find({"kind": "hotline.resolve_due", "payload.order_id": "GD-H1"})
                .to_list()
            }
            bad = await client.post(f"{url}/resolve", json={"unit": unit, "by": "赵"})
            for oid in ("GD-H1", "GD-H2"):
                if oid != "GD-H1":
                    await client.post(
                        f"/v1/complaints/{oid}/acknowledge", json={"unit": unit, "by": "赵"}
                    )
                done = await client.post(
                    f"/v1/complaints/{oid}/resolve",
                    json={
                        "unit": unit,
                        "by": "赵",
                        "outcome": "经现场核查，违法行为成立",
                        "violation_confirmed": True,
                    },
                )
                assert done.status_code == 200, done.text
            page = (
                await client.get("/v1/complaints", params={"status": "resolved", "limit": 1})
            ).json()
            timeline = (await client.get(url)).json()["timeline"]
        # GD-H2's target gets a case (matched by credit code), GD-H1's never does.
        party = {"type": "business", "name": "上海恒盛餐饮有限公司", "id": "91310106MAF0WTCD37"}
        case = Envelope(
            type="gov.enforcement.case.closed",
            source="/case-system/310106",
            district="310106",
            partitionkey="C-1",
            data={
                "case_id": "C-1",
                "unit": unit,
                "district": "310106",
                "procedure": "general",
                "matter": "油烟污染",
                "party": party,
                "dates": {"filed": "2025-03-10"},
                "decision": {"kind": "fine", "fine": 5000},
            },
        )
        await publisher.event(svc.topic(INGEST_ENFORCEMENT), case)
        await eventually(lambda: svc.db["cases"].find_one({"_id": "C-1"}))
        clock.advance(dt.timedelta(days=29))
        assert await svc.timers.tick() == 0
        clock.advance(dt.timedelta(days=1, hours=1))
        await svc.timers.tick()
        await lead_tap.wait_for_events(
            lambda es: bool(leads(lead_tap, LeadKind.CASE_NOT_OPENED, "GD-H1"))
        )
        await eventually(lambda: drained(svc))
        h2 = await svc.db["complaints"].find_one({"_id": "GD-H2"})
    assert early.status_code == 409 and "is dispatched" in early.json()["detail"]
    assert wrong.status_code == 404  # another unit's complaint is out of its scope
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    assert again.status_code == 409 and "is acknowledged" in again.json()["detail"]
    assert ext.status_code == 200 and ext.json()["extension"]["status"] == "pending"
    assert self_decide.status_code == 403  # a unit officer does not decide extensions
    assert decided.status_code == 200
    # 13 working days from Monday 03-03 is 03-20; three more: 03-25.
    assert decided.json()["due"] == "2025-03-25T10:00:00Z"
    assert deadline_timers == {  # the durable timer moved with the deadline
        "cancelled": dt.datetime(2025, 3, 20, 10, tzinfo=dt.UTC),
        "pending": dt.datetime(2025, 3, 25, 10, tzinfo=dt.UTC),
    }
    assert bad.status_code == 422
    assert page["total"] == 2 and len(page["items"]) == 1
    assert [(e["verb"], e["by"]) for e in timeline][2:] == [
        ("acknowledged", "赵"), ("extension_requested", "赵"), ("extension_decided", "孙"),
        ("resolved", "赵"),
    ]  # fmt: skip
    assert of(out, "GD-H1", "extension_decided")[0].data["change"]["approved"] is True
    assert len(leads(lead_tap, LeadKind.CASE_NOT_OPENED, "GD-H1")) == 1
    assert leads(lead_tap, LeadKind.CASE_NOT_OPENED, "GD-H2") == []
    assert h2 is not None and h2["case_ids"] == ["C-1"]


async def test_responsibility_shift_hotspot_and_routing_catalogue_update(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(HotlineSettings, hotspot_threshold=3, hotspot_window_days=7)
    out: KafkaTap = await tap(settings.topic_prefix + HOTLINE_EVENTS.name)
    lead_tap: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    clock = ManualClock(START)
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_HOTLINE)
        async with api_client(svc) as client:
            # 油烟污染 is district-level in 静安 (seed 000: 擅自将本部门的执法事项转交给街镇执行):
            # the department returns it; only when it then goes to a street is it a shift.
            await publisher.event(topic, created("GD-S1", category="YYWR", address="延安中路1号"))
            await out.wait_for_events(lambda es: bool(of(out, "GD-S1", "routed")))
            shifted = await client.post(
                "/v1/complaints/GD-S1/return",
                json={"unit": "310106-sthj", "by": "周", "reason": "属地管理，请街道处理"},
            )
            triage_return = await client.post(
                "/v1/complaints/GD-S1/return",
                json={"unit": "310106-sfj", "by": "吴", "reason": "x"},
            )
            rerouted = await client.post(
                "/v1/complaints/GD-S1/reroute",
                json={"unit": "310106-sfj", "by": "吴", "to_unit": STREET.unit.id,
                      "reason": "转街道综合执法队"},
            )  # fmt: skip
            # The same matter returned without the word 属地, then 12345 hands it to the street.
            await publisher.event(topic, created("GD-S2", category="YYWR", address="延安中路2号"))
            await out.wait_for_events(lambda es: bool(of(out, "GD-S2", "routed")))
            await client.post(
                "/v1/complaints/GD-S2/return",
                json={"unit": "310106-sthj", "by": "周", "reason": "非本单位职责"},
            )
            await publisher.event(
                topic,
                updated("GD-S2", "acknowledged", STREET.unit.id, START + dt.timedelta(hours=2)),
            )
            # 占道经营 is delegated to the streets: a street holding it is no shift.
            await publisher.event(topic, created("GD-S3", address="延安中路3号"))
            await out.wait_for_events(lambda es: bool(of(out, "GD-S3", "routed")))
            await lead_tap.wait_for_events(
                lambda es: bool(leads(lead_tap, LeadKind.RESPONSIBILITY_SHIFT, "GD-S2"))
            )
            # Hotspot: the 3rd complaint within 7 days at the same address raises one lead.
            for i, day in enumerate((0, 3, 6, 6)):
                when = START + dt.timedelta(days=day, hours=i)
                await publisher.event(
                    topic, created(f"GD-P{i}", received=when, address="上海市静安区大统路8号")
                )
                await out.wait_for_events(lambda es, o=f"GD-P{i}": bool(of(out, o, "routed")))
                if i == 1:
                    assert leads(lead_tap, LeadKind.HOTSPOT, "GD-P1") == []
            # The catalogue: read, refuse a foreign unit, then keep 占道经营 at the district.
            entry = (await client.get("/v1/routing/310106/ZDJY")).json()
            refused = await client.put(
                "/v1/routing/310106/ZDJY",
                json={"level": "district", "unit": "310101-cgzf", "by": "admin"},
            )
            changed = await client.put(
                "/v1/routing/310106/ZDJY",
                json={"level": "district", "unit": "310106-cgzf", "by": "admin"},
            )
            listing = (await client.get("/v1/routing", params={"district": "310106"})).json()
            await publisher.event(topic, created("GD-C1"))
            await out.wait_for_events(lambda es: bool(of(out, "GD-C1", "routed")))
            await lead_tap.wait_for_events(
                lambda es: bool(leads(lead_tap, LeadKind.HOTSPOT, "GD-P2"))
            )
            await eventually(lambda: drained(svc))
    assert shifted.status_code == 200, shifted.text
    assert (shifted.json()["unit"], shifted.json()["returns"]) == ("310106-sfj", 1)
    assert shifted.json()["leads"] == []  # the word 属地 alone is no shift
    shift_id = SupervisionLead.make_id(LeadKind.RESPONSIBILITY_SHIFT, "GD-S1", "310106-sthj")
    assert rerouted.json()["leads"] == [shift_id]
    assert len(leads(lead_tap, LeadKind.RESPONSIBILITY_SHIFT, "GD-S1")) == 1
    s2 = leads(lead_tap, LeadKind.RESPONSIBILITY_SHIFT, "GD-S2")
    assert len(s2) == 1 and s2[0].data["evidence"]["reasons"] == ["非本单位职责"]
    assert s2[0].data["unit"] == "310106-sthj"
    assert leads(lead_tap, LeadKind.RESPONSIBILITY_SHIFT, "GD-S3") == []
    assert triage_return.status_code == 409 and "triage" in triage_return.json()["detail"]
    assert rerouted.status_code == 200 and rerouted.json()["unit"] == STREET.unit.id
    assert [e.data["change"]["unit"] for e in of(out, "GD-S1", "rerouted")] == [
        "310106-sfj",
        STREET.unit.id,
    ]
    hotspots = [e for e in lead_tap.events() if e.data.get("kind") == "hotspot"]
    assert len(hotspots) == 1 and hotspots[0].data["subject_id"] == "GD-P2"
    assert hotspots[0].data["evidence"]["complaints"] == ["GD-P0", "GD-P1", "GD-P2"]
    assert (entry["level"], entry["unit"]) == ("street", "310106-cgzf")
    assert refused.status_code == 422
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert listing["total"] == 10
    assert of(out, "GD-C1", "routed")[0].data["complaint"]["unit"] == "310106-cgzf"


async def test_reclassified_work_order_is_rerouted_with_its_deadline_recomputed(
    settings_for: Settings, publisher: Publisher, tap: Any, tmp_path: Path
) -> None:
    """Row 4: 12345 re-classifies an order (new matter code in ``workorder.updated``): the
    complaint is re-routed by the new matter with a timeline entry, its 办结 deadline (and
    durable timer) recomputed, and nothing else lost (no hand-over, no bounce)."""
    table = yaml.safe_load(
        resources.files("services.hotline").joinpath("data/matters.yaml").read_text("utf-8")
    )
    for m in table["matters"]:
        if m["code"] == "YYWR":
            m["resolve_days"] = {"complaint": 5}
    matters = tmp_path / "matters.yaml"
    matters.write_text(yaml.safe_dump(table, allow_unicode=True), encoding="utf-8")
    settings = settings_for(HotlineSettings, matters_path=str(matters))
    out: KafkaTap = await tap(settings.topic_prefix + HOTLINE_EVENTS.name)
    at = START + dt.timedelta(hours=1)
    async with build(settings, clock=ManualClock(at)).running() as svc:
        topic = svc.topic(INGEST_HOTLINE)
        await publisher.event(topic, created("GD-R1"))  # 占道经营: the street's team
        await out.wait_for_events(lambda es: bool(of(out, "GD-R1", "routed")))
        street_unit = of(out, "GD-R1", "routed")[0].data["complaint"]["unit"]
        await publisher.event(topic, updated("GD-R1", "acknowledged", street_unit, at))
        reclassify = updated("GD-R1", "reclassified", street_unit, at, category="YYWR")
        reclassify.data["by_unit"] = "12345"  # the platform itself re-classifies
        await publisher.event(topic, reclassify)
        await out.wait_for_events(lambda es: bool(of(out, "GD-R1", "rerouted")))
        await eventually(lambda: drained(svc))
        async with api_client(svc) as client:
            body = (await client.get("/v1/complaints/GD-R1")).json()
        timers = {
            t["status"]: t["due"]
            for t in await svc.db[TIMERS]
            .find({"kind": "hotline.resolve_due", "payload.order_id": "GD-R1"})
            .to_list()
        }
    reclassified = of(out, "GD-R1", "reclassified")
    assert len(reclassified) == 1
    change = reclassified[0].data["change"]
    assert (change["from_matter"], change["to_matter"], change["limit_days"]) == (
        "ZDJY", "YYWR", 5,
    )  # fmt: skip
    rerouted = of(out, "GD-R1", "rerouted")[0].data["change"]
    assert rerouted["unit"] == "310106-sthj" and "改变分类" in rerouted["reason"]
    assert street_unit != "310106-sthj"
    assert (body["matter"], body["matter_name"], body["unit"]) == (
        "YYWR",
        "油烟污染",
        "310106-sthj",
    )
    # 5 working days after Monday 03-03 is Monday 03-10, close of business (18:00 CST)
    assert body["due"] == "2025-03-10T10:00:00Z" and body["limit_days"] == 5
    assert (body["handovers"], body["returns"], body["leads"]) == (0, 0, [])
    assert body["description"].startswith("市民反映南京西路1000号")
    assert timers == {
        "cancelled": dt.datetime(2025, 3, 20, 10, tzinfo=dt.UTC),
        "pending": dt.datetime(2025, 3, 10, 10, tzinfo=dt.UTC),
    }


async def test_duplicate_report_is_linked_shown_on_both_and_counted_once(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    """Row 12 (重复件): the same problem at the same place within the window under a new
    order id is linked to the first (same street and matter, similar address and text),
    shown on both complaints, and counted once by the 高频投诉 rule."""
    settings = settings_for(HotlineSettings, hotspot_threshold=2, duplicate_window_days=2)
    out: KafkaTap = await tap(settings.topic_prefix + HOTLINE_EVENTS.name)
    lead_tap: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    clock = ManualClock(START)
    address = "上海市静安区大田路18号"
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_HOTLINE)
        await publisher.event(
            topic, created("GD-D1", address=address, description="大田路18号门口流动摊贩占道卖水果")
        )
        await out.wait_for_events(lambda es: bool(of(out, "GD-D1", "routed")))
        reports = [
            # the same problem again, worded differently: a duplicate of GD-D1
            ("GD-D2", 3, address, "大田路18号门口有流动摊贩占道卖水果，请尽快处理"),
            # the same words at another house number: another place
            ("GD-D3", 4, "上海市静安区大田路20号", "大田路20号门口流动摊贩占道卖水果"),
            # another problem of the same matter at the same address: counts for the hotspot
            ("GD-D4", 5, address, "早上有早点铺把桌椅摆到人行道上经营"),
        ]
        for order_id, hours, where, text in reports:
            await publisher.event(
                topic,
                created(
                    order_id,
                    received=START + dt.timedelta(hours=hours),
                    address=where,
                    description=text,
                ),
            )
            await out.wait_for_events(lambda es, o=order_id: bool(of(out, o, "routed")))
            if order_id == "GD-D2":
                assert leads(lead_tap, LeadKind.HOTSPOT, "GD-D2") == []
        await lead_tap.wait_for_events(lambda es: bool(leads(lead_tap, LeadKind.HOTSPOT, "GD-D4")))
        await eventually(lambda: drained(svc))
        async with api_client(svc) as client:
            first = (await client.get("/v1/complaints/GD-D1")).json()
            second = (await client.get("/v1/complaints/GD-D2")).json()
            other = (await client.get("/v1/complaints/GD-D3")).json()
    assert second["duplicate_of"] == "GD-D1" and first["duplicates"] == ["GD-D2"]
    assert first["duplicate_of"] is None and second["duplicates"] == []
    assert (other["duplicate_of"], other["duplicates"]) == (None, [])
    linked = [e for e in second["timeline"] if e["verb"] == "duplicate_linked"]
    assert len(linked) == 1 and linked[0]["detail"]["original"] == "GD-D1"
    noted = [e for e in first["timeline"] if e["verb"] == "duplicate_linked"]
    assert len(noted) == 1 and noted[0]["detail"] == {"duplicate": "GD-D2"}
    events = of(out, "GD-D2", "duplicate_linked") + of(out, "GD-D1", "duplicate_linked")
    assert [e.data["complaint"]["id"] for e in events] == ["GD-D2", "GD-D1"]
    assert of(out, "GD-D3", "duplicate_linked") == of(out, "GD-D4", "duplicate_linked") == []
    hotspots = [e for e in lead_tap.events() if e.data.get("kind") == "hotspot"]
    assert len(hotspots) == 1 and hotspots[0].data["subject_id"] == "GD-D4"
    assert hotspots[0].data["evidence"]["complaints"] == ["GD-D1", "GD-D4"]  # GD-D2 once
