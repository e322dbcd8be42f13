"""The read API over the gateway's own projections, scope isolation, audit and operations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from services.gateway import admin, queries, storage
from services.gateway.domain.access import Role
from services.gateway.settings import GatewaySettings
from shared.contracts import LeadKind, SupervisionLead
from shared.envelope import Envelope
from shared.topics import HOTLINE_EVENTS, NOTIFY_EVENTS, SUPERVISION_LEADS
from tests.gateway.support import T0, add_user, bearer, complaint_event, make_api_key, workorder
from tests.gateway.test_ingest_api import gateway
from tests.helpers import KafkaTap, Publisher, eventually

pytestmark = pytest.mark.integration

JINGAN, HUANGPU = "310106", "310101"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def publish_traced(publisher: Publisher, topic: str, event: Envelope, trace_id: str) -> None:
    """Publish like a service would: binary CloudEvent plus a W3C traceparent header."""
    key, value, headers = event.to_kafka()
    carried = [(k, v.encode()) for k, v in headers.items()]
    carried.append(("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode()))
    await publisher.raw(topic, value, key=key, headers=carried)


async def seed_complaints(svc: Any, publisher: Publisher) -> None:
    topic = svc.topic(HOTLINE_EVENTS)
    steps = [
        ("WO-A", "registered", JINGAN, "310106-cgzf", "received", {}),
        ("WO-A", "routed", JINGAN, "310106-cgzf", "dispatched", {}),
        ("WO-A", "returned", JINGAN, "310106-cgzf", "returned", {"reason": "属地管理"}),
        ("WO-A", "overdue", JINGAN, "310106-cgzf", "dispatched", {}),
        ("WO-B", "registered", HUANGPU, "310101-cgzf", "received", {}),
    ]
    for i, (order, verb, district, unit, status, change) in enumerate(steps):
        event = complaint_event(
            order,
            verb,
            district=district,
            unit=unit,
            status=status,
            at=T0 + timedelta(minutes=i),
            change=change,
        )
        await publish_traced(publisher, topic, event, TRACE if order == "WO-A" else "ab" * 16)

    async def both() -> bool:
        return await queries.feed_size(svc.db) == len(steps)

    await eventually(both)


async def test_district_isolation_masking_timeline_and_overview(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    settings = settings_for(GatewaySettings, jaeger_url="http://jaeger.example:16686")
    async with gateway(settings) as (svc, client):
        await seed_complaints(svc, publisher)
        jingan = bearer(settings, Role.DISTRICT_SUPERVISOR, district=JINGAN)
        city = bearer(settings, Role.CITY_SUPERVISOR)

        own = (await client.get("/v1/complaints", headers=jingan)).json()
        assert [c["id"] for c in own["items"]] == ["WO-A"]
        assert own["items"][0]["snapshot"]["complainant"]["phone"] == "13812345678"
        # Asking for another district's data gets nothing, whichever way it is asked.
        other = await client.get("/v1/complaints", params={"district": HUANGPU}, headers=jingan)
        assert other.status_code == 200 and other.json() == {
            "items": [],
            "total": 0,
            "limit": 50,
            "offset": 0,
        }
        assert (await client.get("/v1/complaints/WO-B", headers=jingan)).status_code == 404
        overview = (await client.get("/v1/overview", headers=jingan)).json()
        assert [d["district"] for d in overview["districts"]] == [JINGAN]

        officer = bearer(settings, Role.UNIT_OFFICER, unit="310101-cgzf")
        assert [
            c["id"] for c in (await client.get("/v1/complaints", headers=officer)).json()["items"]
        ] == ["WO-B"]
        reviewer = bearer(settings, Role.REVIEWER)
        assert (await client.get("/v1/complaints", headers=reviewer)).status_code == 403
        assert (await client.get("/v1/complaints")).status_code == 401

        everyone = (await client.get("/v1/complaints", headers=city)).json()
        assert sorted(c["id"] for c in everyone["items"]) == ["WO-A", "WO-B"]
        masked = everyone["items"][0]["snapshot"]["complainant"]
        assert masked == {"name": "王**", "phone": "138****5678"}

        detail = (await client.get("/v1/complaints/WO-A", headers=city)).json()
        assert [t["verb"] for t in detail["timeline"]] == [
            "registered",
            "routed",
            "returned",
            "overdue",
        ]
        assert {t["trace_id"] for t in detail["timeline"]} == {TRACE}
        assert detail["timeline"][0]["trace_url"] == f"http://jaeger.example:16686/trace/{TRACE}"
        assert detail["item"]["status"] == "dispatched" and detail["item"]["overdue"] is True

        rows = {
            d["district"]: d
            for d in (await client.get("/v1/overview", headers=city)).json()["districts"]
        }
        assert len(rows) == 16
        # returned once is no 推诿: the KPI counts the hotline's bounce rule, not any return
        assert (rows[JINGAN]["overdue_complaints"], rows[JINGAN]["bounced_complaints"]) == (1, 0)
        assert (rows[HUANGPU]["complaints"], rows[HUANGPU]["overdue_complaints"]) == (1, 0)

        feed = await client.get("/v1/stream", params={"max_events": 4}, headers=jingan)
        lines = [json.loads(x[6:]) for x in feed.text.splitlines() if x.startswith("data: ")]
        assert [x["entity_id"] for x in lines] == ["WO-A"] * 4

        reads = await svc.db[storage.AUDIT].find({"resource": "complaints"}).to_list()
        unmasked = [r for r in reads if r["personal_data"]]
        assert unmasked and {r["role"] for r in unmasked} == {"district_supervisor", "unit_officer"}


async def test_leads_are_disposed_within_scope_and_counted(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher, tap: Any
) -> None:
    """Seed 000_ea473ff1d8cb02b8.txt: “对各相关区级执法部门在处理12345市民服务热线等投诉案件时推诿
    责任……的行为进行监督”. The console's 推诿 complaints are those the bounce rule found (a
    BOUNCE lead from the hotline), one per complaint, not every complaint returned once."""
    settings = settings_for(GatewaySettings)
    leads_topic: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    async with gateway(settings) as (svc, client):
        ids = []
        for order in ("WO-1", "WO-2"):
            lead = SupervisionLead(
                lead_id=SupervisionLead.make_id(LeadKind.BOUNCE, order),
                kind=LeadKind.BOUNCE,
                district=JINGAN,
                unit="310106-cgzf",
                subject_type="complaint",
                subject_id=order,
                summary="退单2次",
                raised_at=T0,
                raised_by="hotline",
            )
            ids.append(lead.lead_id)
            await publisher.event(svc.topic(SUPERVISION_LEADS), lead.to_event("/jiandu/hotline"))

        async def raised() -> bool:
            return await svc.db[storage.LEADS].count_documents({}) == 2

        await eventually(raised)
        body = {"outcome": "substantiated", "note": "已约谈"}
        huangpu = bearer(settings, Role.DISTRICT_SUPERVISOR, district=HUANGPU)
        jingan = bearer(settings, Role.DISTRICT_SUPERVISOR, district=JINGAN)
        officer = bearer(settings, Role.UNIT_OFFICER, unit="310106-cgzf")
        assert (
            await client.post(f"/v1/leads/{ids[0]}/dispose", json=body, headers=huangpu)
        ).status_code == 404
        assert (
            await client.post(f"/v1/leads/{ids[0]}/dispose", json=body, headers=officer)
        ).status_code == 403
        done = await client.post(f"/v1/leads/{ids[0]}/dispose", json=body, headers=jingan)
        assert done.status_code == 200 and done.json()["status"] == "disposed"
        assert (
            await client.post(f"/v1/leads/{ids[0]}/dispose", json=body, headers=jingan)
        ).status_code == 409
        bad = await client.post(
            f"/v1/leads/{ids[1]}/dispose", json={"outcome": "?"}, headers=jingan
        )
        assert bad.status_code == 422
        row = (await client.get("/v1/overview", headers=jingan)).json()["districts"][0]
        assert (row["leads_raised"], row["leads_disposed"], row["disposal_rate"]) == (2, 1, 0.5)
        assert row["bounce_leads"] == 2
        assert row["bounced_complaints"] == 2
        opened = await client.get("/v1/leads", params={"status": "open"}, headers=officer)
        assert [x["id"] for x in opened.json()["items"]] == [ids[1]]
        events = await leads_topic.wait_for_events(
            lambda es: any(e.type == "jiandu.gateway.lead.disposed" for e in es)
        )
    disposed = next(e for e in events if e.type == "jiandu.gateway.lead.disposed")
    assert (
        disposed.partitionkey == ids[0]
        and disposed.data["change"]["by"] == "district_supervisor-user"
    )


async def test_tampering_with_one_audit_record_is_detected(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    settings = settings_for(GatewaySettings)
    async with gateway(settings) as (svc, client):
        await add_user(svc, "jingan", "s3cret-pass", Role.DISTRICT_SUPERVISOR, JINGAN)
        token = await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": "jingan", "password": "s3cret-pass"},
        )
        assert token.status_code == 200
        wrong = await client.post("/v1/auth/token", data={"username": "jingan", "password": "nope"})
        assert wrong.status_code == 401
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        await seed_complaints(svc, publisher)
        for _ in range(3):
            assert (await client.get("/v1/complaints/WO-A", headers=headers)).status_code == 200
        operator = bearer(settings, Role.OPERATOR)
        intact = (await client.get("/v1/audit/verify", headers=operator)).json()
        assert intact["ok"] is True and intact["checked"] >= 5

        env = {"JIANDU_MONGO_URI": settings.mongo_uri, "JIANDU_MONGO_DB": settings.database}
        ok = await asyncio.to_thread(CliRunner().invoke, admin.app, ["verify-audit"], env=env)
        assert ok.exit_code == 0, ok.output

        # Someone with database access rewrites who read the personal data.
        await svc.db[storage.AUDIT].update_one({"_id": 3}, {"$set": {"actor": "nobody"}})
        broken = (await client.get("/v1/audit/verify", headers=operator)).json()
        assert broken["ok"] is False and broken["broken_at"] == 3
        cli = await asyncio.to_thread(CliRunner().invoke, admin.app, ["verify-audit"], env=env)
        assert cli.exit_code == 1 and "broken at record 3" in cli.output


async def test_dead_letters_are_listed_and_replayed_by_operators_only(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    settings = settings_for(GatewaySettings, peers="ghost=http://127.0.0.1:9")
    async with gateway(settings) as (svc, client):
        original = svc.topic(HOTLINE_EVENTS)
        key, value, headers = complaint_event("WO-DLT", "registered").to_kafka()
        carried = [(k, v.encode()) for k, v in headers.items()]
        carried += [
            (b_k, b_v)
            for b_k, b_v in (
                ("x-original-topic", original.encode()),
                ("x-exception", b"RuntimeError: projection store down"),
                ("x-attempts", b"3"),
            )
        ]
        await publisher.raw(
            HOTLINE_EVENTS.dlt(settings.topic_prefix), value, key=key, headers=carried
        )
        await publisher.raw(HOTLINE_EVENTS.dlt(settings.topic_prefix), b"\x00not a cloudevent")

        async def stored() -> bool:
            return await svc.db[storage.DEAD_LETTERS].count_documents({}) == 2

        await eventually(stored)
        operator = bearer(settings, Role.OPERATOR)
        listed = (await client.get("/v1/dead-letters", headers=operator)).json()
        letter = next(x for x in listed["items"] if x["original_topic"] == original)
        assert (
            letter["exception"].startswith("RuntimeError")
            and letter["event_type"] == "jiandu.hotline.complaint.registered"
        )
        district = bearer(settings, Role.DISTRICT_SUPERVISOR, district=JINGAN)
        assert (await client.get("/v1/dead-letters", headers=district)).status_code == 403
        assert (
            await client.post(f"/v1/dead-letters/{letter['id']}/replay", headers=district)
        ).status_code == 403
        replayed = await client.post(f"/v1/dead-letters/{letter['id']}/replay", headers=operator)
        assert replayed.status_code == 200 and replayed.json()["replays"] == 1
        raw = next(x for x in listed["items"] if x["original_topic"] is None)
        assert (
            await client.post(f"/v1/dead-letters/{raw['id']}/replay", headers=operator)
        ).status_code == 409

        async def projected() -> bool:
            return await svc.db["complaints"].find_one({"_id": "WO-DLT"}) is not None

        await eventually(projected)  # the replayed record reached its topic and was consumed

        health = (await client.get("/v1/health", headers=operator)).json()
        assert health["self"]["ready"] is True
        assert [(p["service"], p["ok"]) for p in health["services"]] == [("ghost", False)]

        async def lag_reported() -> Any:
            groups = (await client.get("/v1/lag", headers=operator)).json()["groups"]
            return next(
                (g for g in groups if g["group"] == settings.group_id and g["topics"]), None
            )

        mine = await eventually(lag_reported)
        assert mine["lag"] >= 0 and any(t["topic"] == original for t in mine["topics"])


async def test_clients_find_their_own_leads_and_quarantine_by_event_key_and_subject(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    settings = settings_for(GatewaySettings)
    ce = {"Content-Type": "application/cloudevents+json"}
    async with gateway(settings) as (svc, client):
        mine, theirs = await make_api_key(svc, "12345"), await make_api_key(svc, "other")
        sent: dict[str, str] = {}
        for order, (_, key) in (("WO-K1", mine), ("WO-K2", theirs)):
            event = workorder(order)
            sent[order] = event["id"]
            response = await client.post(
                "/v1/events", content=json.dumps(event), headers={**ce, "X-Api-Key": key}
            )
            assert response.status_code == 202, response.text
            lead = SupervisionLead(
                lead_id=SupervisionLead.make_id(LeadKind.BOUNCE, order),
                kind=LeadKind.BOUNCE,
                district=JINGAN,
                unit="310106-cgzf",
                subject_type="complaint",
                subject_id=order,
                summary="退单2次",
                raised_at=T0,
                raised_by="hotline",
            )
            await publisher.event(svc.topic(SUPERVISION_LEADS), lead.to_event("/jiandu/hotline"))
            notice = Envelope(
                type="jiandu.notify.notice.created",
                source="/jiandu/notify",
                subject=f"notice/N-{order}",
                district=JINGAN,
                partitionkey=f"N-{order}",
                time=T0,
                data={
                    "notice": {
                        "id": f"N-{order}",
                        "district": JINGAN,
                        "recipient_unit": "310106-cgzf",
                        "status": "created",
                        "subject_type": "complaint",
                        "subject_id": order,
                    },
                    "change": {},
                },
            )
            await publisher.event(svc.topic(NOTIFY_EVENTS), notice)
        bad = workorder("WO-K3")
        bad["type"] = "gov.12345.workorder.deleted"
        refused = await client.post(
            "/v1/events", content=json.dumps(bad), headers={**ce, "X-Api-Key": mine[1]}
        )
        assert refused.status_code == 422

        async def raised() -> bool:
            leads = await svc.db[storage.LEADS].count_documents({})
            return leads == 2 and await svc.db["notices"].count_documents({}) == 2

        await eventually(raised)
        city = bearer(settings, Role.CITY_SUPERVISOR)

        async def subjects(path: str, **params: str) -> list[str]:
            response = await client.get(path, params=params, headers=city)
            assert response.status_code == 200, response.text
            return sorted(item["subject_id"] for item in response.json()["items"])

        assert await subjects("/v1/leads", key_id=mine[0]) == ["WO-K1"]
        assert await subjects("/v1/leads", key_id=theirs[0]) == ["WO-K2"]
        assert await subjects("/v1/leads", event_id=sent["WO-K2"]) == ["WO-K2"]
        assert await subjects("/v1/leads", subject_id="WO-K1") == ["WO-K1"]
        assert await subjects("/v1/quarantine", key_id=mine[0]) == ["WO-K3"]
        assert await subjects("/v1/quarantine", key_id=theirs[0]) == []
        assert await subjects("/v1/quarantine", event_id=bad["id"]) == ["WO-K3"]
        assert await subjects("/v1/quarantine", subject_id="WO-K3") == ["WO-K3"]
        # the notices about a client's work orders, through the gateway's projection
        assert await subjects("/v1/notices", key_id=mine[0]) == ["WO-K1"]
        assert await subjects("/v1/notices", event_id=sent["WO-K2"]) == ["WO-K2"]
        assert await subjects("/v1/notices", subject_id="WO-K2") == ["WO-K2"]


async def test_csv_export_in_scope_and_anonymous_open_data(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    """Row 28: CSV export of complaints, filings, leads and reviews in the caller's scope
    (no personal data), and an anonymous aggregate per district and month."""
    settings = settings_for(GatewaySettings)
    async with gateway(settings) as (svc, client):
        await seed_complaints(svc, publisher)
        lead = SupervisionLead(
            lead_id=SupervisionLead.make_id(LeadKind.BOUNCE, "WO-A"),
            kind=LeadKind.BOUNCE,
            district=JINGAN,
            unit="310106-cgzf",
            subject_type="complaint",
            subject_id="WO-A",
            summary="工单 WO-A 被退单 2 次",
            raised_at=T0,
            raised_by="hotline",
        )
        await publisher.event(svc.topic(SUPERVISION_LEADS), lead.to_event("/jiandu/hotline"))

        async def lead_stored() -> bool:
            return await svc.db[storage.LEADS].count_documents({}) == 1

        await eventually(lead_stored)
        jingan = bearer(settings, Role.DISTRICT_SUPERVISOR, district=JINGAN)
        city = bearer(settings, Role.CITY_SUPERVISOR)
        reviewer = bearer(settings, Role.REVIEWER)
        own = await client.get("/v1/export/complaints.csv", headers=jingan)
        everyone = await client.get("/v1/export/complaints.csv", headers=city)
        leads_csv = await client.get("/v1/export/leads.csv", headers=city)
        cases_csv = await client.get("/v1/export/cases.csv", headers=reviewer)
        filings_csv = await client.get("/v1/export/filings.csv", headers=jingan)
        refused = await client.get("/v1/export/complaints.csv", headers=reviewer)
        anonymous = await client.get("/v1/export/complaints.csv")
        opened = await client.get("/v1/open-data/monthly")  # no credentials at all
        exports = await svc.db[storage.AUDIT].count_documents({"action": "export"})

    def rows(text: str) -> list[list[str]]:
        return [line.split(",") for line in text.lstrip("\ufeff").splitlines()]

    assert own.status_code == 200 and own.headers["content-type"].startswith("text/csv")
    assert [r[0] for r in rows(own.text)] == ["id", "WO-A"]  # 静安 only
    assert sorted(r[0] for r in rows(everyone.text)[1:]) == ["WO-A", "WO-B"]
    assert "13812345678" not in everyone.text and "王小明" not in everyone.text
    assert [r[0] for r in rows(leads_csv.text)[1:]] == [lead.lead_id]
    assert cases_csv.status_code == 200 and rows(cases_csv.text)[1:] == []
    assert filings_csv.status_code == 200
    assert (refused.status_code, anonymous.status_code) == (403, 401)
    assert exports == 3  # the empty case and filing exports sent no rows
    body = opened.json()
    assert opened.status_code == 200 and "13812345678" not in opened.text
    by_key = {(r["district"], r["month"]): r for r in body["rows"]}
    assert by_key[(JINGAN, "2025-03")]["complaints"] == 1
    assert by_key[(JINGAN, "2025-03")]["bounced_complaints"] == 1
    assert by_key[(HUANGPU, "2025-03")]["complaints"] == 1
    assert "WO-A" not in opened.text


async def test_the_audit_chain_continues_from_its_head_document_and_from_an_older_chain(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    """The chain's head is one ``_id`` read (``storage.AUDIT_HEAD``), written with every
    append by the HTTP path and the consumer path alike; a chain written before the head
    document existed continues from its last record."""
    from services.gateway.main import build as build_gateway

    svc = build_gateway(settings_for(GatewaySettings))
    async with svc.running():
        db, at = svc.db, T0
        record = {"actor": "a", "role": "operator", "resource": "r"}
        for action in ("one", "two"):
            await storage.AuditLog(db).append(at=at, action=action, **record)
        await db[storage.COUNTERS].delete_one({"_id": storage.AUDIT_HEAD})  # an older chain
        third = await storage.AuditLog(db).append(at=at, action="three", **record)
        fourth = await svc.run_in_uow(
            lambda uow: storage.append_audit_in(uow, at=at, action="four", **record)
        )
        fifth = await storage.AuditLog(db).append(at=at, action="five", **record)
        head = await db[storage.COUNTERS].find_one({"_id": storage.AUDIT_HEAD})
        report = await storage.AuditLog(db).verify()
    assert [third["seq"], fourth["seq"], fifth["seq"]] == [3, 4, 5]
    assert fourth["prev_hash"] == third["hash"] and fifth["prev_hash"] == fourth["hash"]
    assert head is not None and head["record"]["hash"] == fifth["hash"]
    assert report.ok and report.checked == 5
