"""The penalty service on the real embedded Kafka and MongoDB, with a ManualClock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from services.penalty.main import build
from services.penalty.settings import PenaltySettings
from shared.clock import ManualClock
from shared.contracts import LeadKind, SupervisionLead
from shared.envelope import Envelope
from shared.service import Service
from shared.topics import (
    INGEST_ENFORCEMENT,
    INGEST_QUARANTINE,
    NOTIFY_REQUESTS,
    PENALTY_EVENTS,
    SUPERVISION_LEADS,
)
from shared.workcalendar import CST
from tests.helpers import KafkaTap, Publisher, api_client, eventually

pytestmark = pytest.mark.integration

FOOD_124 = "《中华人民共和国食品安全法》第一百二十四条"  # business: 50,000–100,000 元
DAQI_118 = "《中华人民共和国大气污染防治法》第一百一十八条"  # business: 5,000–50,000 元
DECIDED_AT = dt.datetime(2025, 3, 3, 10, 0, tzinfo=CST)  # last on-time filing day: 03-13
DAY_10 = dt.datetime(2025, 3, 13, 18, 0, tzinfo=CST)
DAY_11 = dt.datetime(2025, 3, 14, 9, 0, tzinfo=CST)
UNIT = "310106-scjg"
DOCS = [{"kind": "顶格处罚备案报告", "date": "2025-03-10"}, {"kind": "行政处罚决定书"}]

Settings = Callable[..., PenaltySettings]


def decided(
    case_id: str,
    *,
    unit: str = UNIT,
    provision: str = FOOD_124,
    fine: float = 100000,
    at: dt.datetime = DECIDED_AT,
    circumstances: tuple[str, ...] = (),
    key: str | None = None,
) -> Envelope:
    return Envelope(
        type="gov.enforcement.penalty.decided",
        source="/tests/case-system",
        district=unit[:6],
        subject=f"case/{case_id}",
        partitionkey=key or case_id,
        data={
            "case_id": case_id,
            "unit": unit,
            "district": unit[:6],
            "provision": provision,
            "party_type": "business",
            "fine": fine,
            "decided_at": at.isoformat(),
            "circumstances": list(circumstances),
            "party_name": "上海鑫源食品有限公司",
        },
    )


def filed(case_id: str, at: dt.datetime, unit: str = UNIT) -> Envelope:
    return Envelope(
        type="gov.enforcement.penalty.filed",
        source="/tests/unit",
        district=unit[:6],
        subject=f"case/{case_id}",
        partitionkey=case_id,
        data={"case_id": case_id, "unit": unit, "filed_at": at.isoformat(), "documents": DOCS},
    )


def verbs(tap: KafkaTap, case_id: str) -> list[str]:
    return [e.type.rsplit(".", 1)[-1] for e in tap.events() if e.partitionkey == case_id]


def has(tap: KafkaTap, case_id: str, verb: str) -> Callable[[list[Envelope]], bool]:
    return lambda _: verb in verbs(tap, case_id)


def leads_of(tap: KafkaTap, kind: LeadKind) -> list[Envelope]:
    return [e for e in tap.events() if e.data.get("kind") == kind.value]


async def outbox_empty(svc: Service) -> bool:
    return await svc.relay.pending() == 0  # type: ignore[union-attr]


async def test_unfiled_top_tier_raises_exactly_one_missing_filing_lead_across_restarts(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(PenaltySettings)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    notices: KafkaTap = await tap(settings.topic_prefix + NOTIFY_REQUESTS.name)
    clock = ManualClock(DECIDED_AT + dt.timedelta(hours=1))
    async with build(settings, clock=clock).running() as svc:
        await publisher.event(svc.topic(INGEST_ENFORCEMENT), decided("C-MISS"))
        await events.wait_for_events(has(events, "C-MISS", "top_tier_detected"))
        clock.set(dt.datetime(2025, 3, 13, 23, 59, 59, tzinfo=CST))  # still day 10
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]

    clock.set(dt.datetime(2025, 3, 14, 0, 0, 1, tzinfo=CST))  # day 11, service was down
    async with build(settings, clock=clock).running() as svc:
        assert await svc.timers.tick() == 1  # type: ignore[union-attr]
        await leads.wait_for_events(lambda _: bool(leads_of(leads, LeadKind.MISSING_FILING)))
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]
        await eventually(lambda: outbox_empty(svc))
        doc = await svc.db["filings"].find_one({"_id": "C-MISS"})

    clock.advance(dt.timedelta(days=30))
    async with build(settings, clock=clock).running() as svc:
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]

    assert doc is not None and doc["status"] == "missing" and doc["missing"] is True
    missing = leads_of(leads, LeadKind.MISSING_FILING)
    assert len(missing) == 1
    assert missing[0].data["subject_id"] == "C-MISS"
    assert missing[0].id == SupervisionLead.make_id(LeadKind.MISSING_FILING, "C-MISS")
    assert "2025-03-13" in missing[0].data["summary"]
    reminded = await notices.wait_for_events(
        lambda es: any(e.data["kind"] == "filing_reminder" for e in es)
    )
    reminders = [e for e in reminded if e.data["kind"] == "filing_reminder"]
    assert len(reminders) == 1 and reminders[0].data["recipient_unit"] == UNIT
    assert verbs(events, "C-MISS").count("missing_filing") == 1


async def test_late_filing_is_flagged_and_on_time_filing_is_not(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(PenaltySettings)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    clock = ManualClock(DECIDED_AT + dt.timedelta(hours=1))
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_ENFORCEMENT)
        for case_id in ("C-LATE", "C-ONTIME", "C-API"):
            await publisher.event(topic, decided(case_id))
        await publisher.event(topic, filed("C-LATE", DAY_11))
        await publisher.event(topic, filed("C-ONTIME", DAY_10))
        await events.wait_for_events(
            lambda es: (
                "late_filing" in verbs(events, "C-LATE")
                and "filed" in verbs(events, "C-ONTIME")
                and "top_tier_detected" in verbs(events, "C-API")
            )
        )
        clock.set(dt.datetime(2025, 3, 15, 9, 0, tzinfo=CST))  # day 12 (two days late)
        async with api_client(svc) as client:
            body = {"case_id": "C-API", "unit": UNIT, "documents": DOCS}
            assert (
                await client.post("/v1/penalty/filings", json={**body, "documents": []})
            ).status_code == 422
            created = await client.post("/v1/penalty/filings", json=body)
            assert created.status_code == 201, created.text
            assert created.json()["late"] is True and created.json()["days_late"] == 2
            again = await client.post("/v1/penalty/filings", json=body)
            assert again.status_code == 409 and "already filed" in again.json()["detail"]
            wrong = await client.post(
                "/v1/penalty/filings", json={**body, "case_id": "C-LATE", "unit": "310106-cgzf"}
            )
            assert wrong.status_code == 404  # another unit's penalty is out of its scope
            late = (await client.get("/v1/penalty/filings", params={"late": True})).json()
            flags = (await client.get("/v1/penalty/flags", params={"kind": "late_filing"})).json()
            on_time = (await client.get("/v1/penalty/filings/C-ONTIME")).json()
        await leads.wait_for_events(lambda _: len(leads_of(leads, LeadKind.LATE_FILING)) >= 2)
        clock.advance(dt.timedelta(days=30))
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]  # all three filed
        await eventually(lambda: outbox_empty(svc))

    assert sorted(f["id"] for f in late["items"]) == ["C-API", "C-LATE"]
    assert sorted(f["case_id"] for f in flags["items"]) == ["C-API", "C-LATE"]
    assert on_time["late"] is False and on_time["status"] == "filed"
    assert on_time["documents"][0]["kind"] == "顶格处罚备案报告"
    late_leads = leads_of(leads, LeadKind.LATE_FILING)
    assert sorted(e.data["subject_id"] for e in late_leads) == ["C-API", "C-LATE"]
    assert not leads_of(leads, LeadKind.MISSING_FILING)
    assert "late_filing" not in verbs(events, "C-ONTIME")


async def test_redelivered_and_resent_events_change_nothing(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(PenaltySettings)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    quarantine: KafkaTap = await tap(settings.topic_prefix + INGEST_QUARANTINE.name)
    clock = ManualClock(DECIDED_AT + dt.timedelta(hours=1))
    decision = decided("D-1", circumstances=("first_offence", "corrected"))
    filing = filed("D-1", DAY_11)
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_ENFORCEMENT)
        await publisher.event(topic, decision)
        await publisher.event(topic, filing)
        await events.wait_for_events(has(events, "D-1", "late_filing"))
        await eventually(lambda: outbox_empty(svc))
        await leads.wait_for_events(lambda es: len(es) >= 2)  # disproportion, late filing
        before = await svc.db["filings"].find_one({"_id": "D-1"})
        flags_before = await svc.db["flags"].count_documents({})
        events_before, leads_before = verbs(events, "D-1"), len(leads.events())

        for event in (decision, filing):
            await publisher.event(topic, event)  # redelivery: same event id
            await publisher.event(topic, event.model_copy(update={"id": f"resent-{event.id}"}))
        conflicting = decided("D-1", fine=90000)
        await publisher.event(topic, conflicting)
        marker = decided("D-MARK", fine=60000, key="D-1")  # same partition: processed last
        await publisher.event(topic, marker)
        await events.wait_for_events(has(events, "D-MARK", "decided"))
        await quarantine.wait_for_events(lambda es: len(es) >= 1)
        await eventually(lambda: outbox_empty(svc))
        after = await svc.db["filings"].find_one({"_id": "D-1"})
        flags_after = await svc.db["flags"].count_documents({})

    assert events_before.count("disproportion_flagged") == 1
    assert {"decided", "top_tier_detected", "filed", "late_filing"} <= set(events_before)
    assert after == before
    assert flags_after == flags_before == 3  # large_top_tier, disproportion, late_filing
    assert verbs(events, "D-1") == events_before
    assert len(leads.events()) == leads_before == 2  # disproportion, late filing
    refused = quarantine.events()
    assert len(refused) == 1 and refused[0].data["event_id"] == conflicting.id
    assert "conflicting decision" in refused[0].data["reason"]


async def test_fine_anomaly_detected_incrementally_with_one_lead_per_unit_month(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    """Own history Jan 10,000 + Feb 10,000 → baseline 10,000 元. March, penalty by penalty:
    10,000 (growth 0%); 20,000 ((20,000 − 10,000) / 10,000 = 100% = threshold → lead);
    30,000 (also 3 × the peers' mean 10,000 → still the same single lead)."""
    settings = settings_for(
        PenaltySettings,
        anomaly_history_months=2,
        anomaly_min_history_months=2,
        anomaly_own_growth=1.0,
        anomaly_peer_ratio=3.0,
        anomaly_min_peers=3,
        anomaly_min_amount=10000,
    )
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    unit = "310106-sthj"
    march = dt.datetime(2025, 3, 10, 10, 0, tzinfo=CST)
    feed = [
        decided("A-JAN", unit=unit, provision=DAQI_118, fine=10000, at=march.replace(month=1)),
        decided("A-FEB", unit=unit, provision=DAQI_118, fine=10000, at=march.replace(month=2)),
        *(
            decided(f"P-{peer}", unit=f"{peer}-sthj", provision=DAQI_118, fine=10000, at=march)
            for peer in ("310101", "310104", "310105")
        ),
        decided("A-MAR-1", unit=unit, provision=DAQI_118, fine=10000, at=march),
        decided("A-MAR-2", unit=unit, provision=DAQI_118, fine=10000, at=march),
        decided("A-MAR-3", unit=unit, provision=DAQI_118, fine=10000, at=march),
    ]
    async with build(settings, clock=ManualClock(march)).running() as svc:
        for event in feed:  # one partition key: processed in this order
            await publisher.event(
                svc.topic(INGEST_ENFORCEMENT), event.model_copy(update={"partitionkey": "feed"})
            )
        await events.wait_for_events(has(events, "A-MAR-3", "decided"))
        await eventually(lambda: outbox_empty(svc))
        async with api_client(svc) as client:
            page = (
                await client.get("/v1/penalty/anomalies", params={"unit": unit, "month": "2025-03"})
            ).json()
            flagged = (await client.get("/v1/penalty/anomalies", params={"anomalous": True})).json()
    # published is not yet read: the tap may still be fetching the lead
    await leads.wait_for_events(lambda _: bool(leads_of(leads, LeadKind.FINE_ANOMALY)))

    anomaly_leads = leads_of(leads, LeadKind.FINE_ANOMALY)
    assert len(anomaly_leads) == 1
    lead = anomaly_leads[0]
    assert lead.id == SupervisionLead.make_id(LeadKind.FINE_ANOMALY, unit, "2025-03")
    assert "20,000 元" in lead.data["summary"] and "100.0%" in lead.data["summary"]
    assert [r["rule"] for r in lead.data["evidence"]["triggered"]] == ["own_history"]
    detected = [e.partitionkey for e in events.events() if e.type.endswith("anomaly_detected")]
    assert detected == ["A-MAR-2"]
    (march_doc,) = page["items"]
    assert march_doc["total"] == 30000 and march_doc["count"] == 3 and march_doc["anomalous"]
    assert [r["triggered"] for r in march_doc["rules"]] == [True, True]
    assert march_doc["rules"][1]["baseline"] == 10000 and march_doc["rules"][1]["value"] == 3.0
    assert [a["id"] for a in flagged["items"]] == [f"{unit}:2025-03"]


async def test_bureau_review_letters_replies_escalation_and_manual_classification(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(PenaltySettings)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    notices: KafkaTap = await tap(settings.topic_prefix + NOTIFY_REQUESTS.name)
    clock = ManualClock(DECIDED_AT + dt.timedelta(hours=1))
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_ENFORCEMENT)
        await publisher.event(topic, decided("R-1"))
        await publisher.event(topic, filed("R-1", DECIDED_AT + dt.timedelta(days=2)))
        await publisher.event(topic, decided("U-1", provision="《上海市某某管理办法》第九条"))
        await events.wait_for_events(
            lambda _: (
                "filed" in verbs(events, "R-1") and "classification_needed" in verbs(events, "U-1")
            )
        )
        async with api_client(svc) as client:
            review = "/v1/penalty/filings/R-1/review"
            rec = await client.post(
                review,
                json={"outcome": "recommendation", "by": "310106-sfj", "opinion": "建议重新裁量"},
            )
            assert rec.status_code == 201, rec.text
            letter = rec.json()["letter"]
            assert letter["kind"] == "recommendation" and letter["status"] == "awaiting_reply"
            accept = await client.post(
                review, json={"outcome": "accept", "by": "x", "opinion": "ok"}
            )
            assert accept.status_code == 409
            missing = await client.post(
                "/v1/penalty/filings/NOPE/review",
                json={"outcome": "decision", "by": "310106-sfj", "opinion": "x"},
            )
            assert missing.status_code == 404

            clock.advance(dt.timedelta(days=16))  # 15-day reply period passed
            assert await svc.timers.tick() == 1  # type: ignore[union-attr]
            escalated = (await client.get(f"/v1/penalty/letters/{letter['id']}")).json()
            reply_url = f"/v1/penalty/letters/{letter['id']}/reply"
            stranger = await client.post(reply_url, json={"by": "310106-cgzf", "content": "x"})
            replied = await client.post(reply_url, json={"by": UNIT, "content": "已重新审查"})
            accepted = await client.post(
                review, json={"outcome": "accept", "by": "310106-sfj", "opinion": "同意备案"}
            )

            classified = await client.post(
                "/v1/penalty/filings/U-1/classification",
                json={"top_tier": True, "by": "310106-sfj", "note": "按地方规章上限认定"},
            )
            again = await client.post(
                "/v1/penalty/filings/U-1/classification",
                json={"top_tier": True, "by": "310106-sfj", "note": "again"},
            )
            letters = (await client.get("/v1/penalty/letters", params={"case_id": "R-1"})).json()
            catalogue = (
                await client.get("/v1/penalty/catalogue", params={"domain": "food_safety"})
            ).json()
        await leads.wait_for_events(lambda _: bool(leads_of(leads, LeadKind.OVERDUE)))
        await events.wait_for_events(has(events, "U-1", "top_tier_detected"))
        expected = {"recommendation", "escalation", "supervision_notice"}
        await notices.wait_for_events(lambda es: expected <= {e.data["kind"] for e in es})
        timer = await svc.db["timers"].find_one({"_id": "penalty:filing-due:U-1"})

    assert escalated["status"] == "escalated"
    assert stranger.status_code == 404  # another unit's letter is out of its scope
    assert replied.status_code == 200 and replied.json()["reply"]["late"] is True
    assert accepted.status_code == 201 and accepted.json()["filing"]["status"] == "accepted"
    assert [item["kind"] for item in letters["items"]] == ["acceptance", "recommendation"]
    kinds = [e.data["kind"] for e in notices.events()]
    assert kinds.count("recommendation") == 1 and kinds.count("escalation") == 1
    assert kinds.count("supervision_notice") == 1
    rec_notice = next(e for e in notices.events() if e.data["kind"] == "recommendation")
    assert rec_notice.data["deadline"].startswith("2025-03-18T16:00")  # end of 03-18 CST
    assert classified.status_code == 200 and classified.json()["status"] == "awaiting_filing"
    assert again.status_code == 409
    assert timer is not None and timer["status"] == "pending"
    assert catalogue["total"] >= 5 and all(p["domain"] == "food_safety" for p in catalogue["items"])
    assert {"letter_issued", "reply_recorded"} <= set(verbs(events, "R-1"))


async def test_multiples_measures_and_a_holiday_deadline_over_the_real_servers(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    """《食品安全法》第一百二十四条 (货值金额一万元以上 10–20 倍), 《行政处罚法》第九条
    (吊销许可证件), seed 000 (10日内备案) with 《民法典》第二百零三条
    (最后一日为法定休假日的顺延)."""
    settings = settings_for(PenaltySettings)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    national_day = dt.datetime(2025, 9, 26, 15, 0, tzinfo=CST)
    clock = ManualClock(national_day + dt.timedelta(hours=1))
    async with build(settings, clock=clock).running() as svc:
        topic = svc.topic(INGEST_ENFORCEMENT)
        lawful = decided("M-LAWFUL", fine=200000, at=national_day)
        lawful.data["goods_value"] = 15000
        unknown = decided("M-BASIS", fine=200000, at=national_day)
        revoked = decided("M-REVOKE", fine=60000, at=national_day)
        revoked.data["measures"] = ["revoke_license"]
        for event in (lawful, unknown, revoked):
            await publisher.event(topic, event)
        await events.wait_for_events(
            lambda es: (
                "decided" in verbs(events, "M-LAWFUL")
                and "classification_needed" in verbs(events, "M-BASIS")
                and "top_tier_detected" in verbs(events, "M-REVOKE")
            )
        )
        async with api_client(svc) as client:
            docs = {
                c: (await client.get(f"/v1/penalty/filings/{c}")).json()
                for c in ("M-LAWFUL", "M-BASIS", "M-REVOKE")
            }
    assert docs["M-LAWFUL"]["status"] == "not_required", docs["M-LAWFUL"]
    assert docs["M-LAWFUL"]["above_range"] is False
    assert docs["M-BASIS"]["status"] == "classification_needed"
    assert docs["M-REVOKE"]["status"] == "awaiting_filing"
    assert docs["M-REVOKE"]["deadline_last_day"] == "2025-10-09"  # day 10 (10-06) is 国庆
    top = [e for e in events.events() if e.type.endswith("top_tier_detected")]
    assert [e.partitionkey for e in top] == ["M-REVOKE"]
