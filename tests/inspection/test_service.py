"""The inspection service on the real embedded Kafka and MongoDB, with a ManualClock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from services.inspection.main import build
from services.inspection.settings import InspectionSettings
from shared.clock import ManualClock
from shared.contracts import LeadKind, SupervisionLead
from shared.envelope import Envelope
from shared.service import Service
from shared.topics import (
    INGEST_INSPECTIONS,
    INGEST_QUARANTINE,
    INSPECTION_EVENTS,
    NOTIFY_REQUESTS,
    SUPERVISION_LEADS,
)
from shared.workcalendar import CST
from tests.helpers import KafkaTap, Publisher, api_client, applied_ids, eventually

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 4, 15, 9, 0, tzinfo=CST)
UNIT = "310101-scjg"
FIRM, OTHER, FIRM3, FIRM4, FIRM5 = (
    f"91310101MA1FL0{s}" for s in ("AB3X", "CD5Y", "EF7W", "GH9U", "JK2T")
)

Settings = Callable[..., InspectionSettings]


def event(kind: str, key: str, data: dict[str, Any]) -> Envelope:
    return Envelope(
        type=f"gov.enforcement.{kind}",
        source="/tests/unit-system",
        district=data["district"],
        subject=key,
        partitionkey="feed",  # one partition: processed in the order published
        data=data,
    )


def planned(
    plan_id: str, unit: str, enterprises: list[str], sectors: tuple[str, ...] = ()
) -> Envelope:
    return event(
        "inspection.planned",
        plan_id,
        {
            "plan_id": plan_id,
            "unit": unit,
            "district": unit[:6],
            "period_start": "2026-04-01",
            "period_end": "2026-06-30",
            "enterprises": enterprises,
            "sectors": list(sectors),
            "double_random": True,
            "filed_at": "2026-03-20T10:00:00+08:00",
        },
    )


def certified(officer: str, unit: str = UNIT) -> Envelope:
    return event(
        "officer.certified",
        officer,
        {
            "officer_id": officer,
            "unit": unit,
            "district": unit[:6],
            "cert_no": f"沪执-{officer}",
            "valid_from": "2025-01-01",
            "valid_until": "2027-12-31",
            "at": "2025-01-01T09:00:00+08:00",
        },
    )


def withdrawn(kind: str, officer: str, unit: str = UNIT, until: str | None = None) -> Envelope:
    data: dict[str, Any] = {
        "officer_id": officer,
        "unit": unit,
        "district": unit[:6],
        "cert_no": f"沪执-{officer}",
        "since": "2026-04-01",
        "reason": "违法执法",
        "at": "2026-04-01T09:00:00+08:00",
    }
    if until:
        data["until"] = until
    return event(f"officer.{kind}", officer, data)


def inspected(
    inspection_id: str,
    enterprise: str,
    *,
    unit: str = UNIT,
    officers: tuple[str, ...] = ("O-1", "O-2"),
    scanned: bool = True,
    joint: str | None = None,
    sector: str | None = None,
    day: int = 10,
) -> Envelope:
    return event(
        "inspection.conducted",
        inspection_id,
        {
            "inspection_id": inspection_id,
            "unit": unit,
            "district": unit[:6],
            "officers": [{"id": o, "cert_no": f"沪执-{o}"} for o in officers],
            "enterprise": enterprise,
            "sector": sector,
            "at": dt.datetime(2026, 4, day, 10, 0, tzinfo=CST).isoformat(),
            "code_scanned": scanned,
            "joint_id": joint,
            "result": "no_issue",
        },
    )


def review(review_id: str, outcome: str, unit: str = UNIT) -> Envelope:
    return event(
        "review.decided",
        review_id,
        {
            "review_id": review_id,
            "case_id": f"C-{review_id}",
            "unit": unit,
            "district": unit[:6],
            "channel": "reconsideration",
            "outcome": outcome,
            "decided_at": "2026-04-12T10:00:00+08:00",
            "body": "黄浦区人民政府",
        },
    )


def leads_of(tap: KafkaTap, kind: LeadKind) -> list[Envelope]:
    return [e for e in tap.events() if e.data.get("kind") == kind.value]


def recorded(tap: KafkaTap, subject: str) -> Callable[[list[Envelope]], bool]:
    return lambda es: any(e.subject == subject and e.type.endswith(".recorded") for e in es)


async def outbox_empty(svc: Service) -> bool:
    return await svc.relay.pending() == 0  # type: ignore[union-attr]


async def publish_all(publisher: Publisher, svc: Service, feed: list[Envelope]) -> None:
    for e in feed:
        await publisher.event(svc.topic(INGEST_INSPECTIONS), e)


async def test_each_inspection_rule_raises_its_lead_and_a_clean_inspection_raises_none(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(InspectionSettings, repeat_max_units=3, repeat_max_visits=3)
    events: KafkaTap = await tap(settings.topic_prefix + INSPECTION_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    notices: KafkaTap = await tap(settings.topic_prefix + NOTIFY_REQUESTS.name)
    feed = [
        planned("P-1", UNIT, [FIRM, FIRM3], ("food",)),
        planned("P-2", "310101-cgzf", [], ("food",)),
        planned("P-3", "310101-wsjd", [], ("food",)),
        *(certified(o) for o in ("O-1", "O-2", "O-3")),
        withdrawn("revoked", "O-3"),
        inspected("I-OK", FIRM),
        inspected("I-UNPLANNED", OTHER),  # neither named nor of a planned sector
        inspected("I-NOCODE", FIRM, scanned=False, day=11),
        inspected("I-NOCERT", FIRM3, officers=("O-1", "O-3")),  # O-3's certificate revoked
        inspected("I-NOBODY", FIRM3, officers=("O-1", "O-X"), day=11),  # O-X never certified
        # 多头检查: three units at FIRM4 (two of them together: one visit)
        inspected("I-M1", FIRM4, sector="food", joint="J-1"),
        inspected("I-M2", FIRM4, unit="310101-cgzf", officers=("O-1",), sector="food", joint="J-1"),
        inspected("I-M3", FIRM4, unit="310101-wsjd", officers=("O-2",), sector="food", day=12),
        inspected("I-M4", FIRM4, sector="food", day=13),  # still the same window: no 2nd lead
        # 综合查一次: two units together, then one more visit: 2 visits by 2 units, no lead
        inspected("I-J1", FIRM5, sector="food", joint="J-2"),
        inspected("I-J2", FIRM5, unit="310101-cgzf", officers=("O-1",), sector="food", joint="J-2"),
        inspected("I-J3", FIRM5, sector="food", day=12),
    ]
    async with build(settings, clock=ManualClock(NOW)).running() as svc:
        await publish_all(publisher, svc, feed)
        await events.wait_for_events(recorded(events, "inspection/I-J3"))
        await eventually(lambda: outbox_empty(svc))
        async with api_client(svc) as client:
            summary = (
                await client.get("/v1/inspection/summary", params={"district": "310101"})
            ).json()
            nocode = (
                await client.get("/v1/inspection/inspections", params={"flag": "code_not_shown"})
            ).json()
            clean = (await client.get("/v1/inspection/inspections/I-OK")).json()
            revoked = (
                await client.get("/v1/inspection/officers", params={"status": "revoked"})
            ).json()
            flags = (await client.get("/v1/inspection/flags", params={"district": "310101"})).json()

    def subjects(kind: LeadKind) -> list[str]:
        return sorted(e.data["subject_id"] for e in leads_of(leads, kind))

    assert subjects(LeadKind.UNPLANNED_INSPECTION) == ["I-UNPLANNED"]
    assert subjects(LeadKind.CODE_NOT_SHOWN) == ["I-NOCODE"]
    assert subjects(LeadKind.UNCERTIFIED_OFFICER) == ["I-NOBODY", "I-NOCERT"]
    uncertified = {
        e.data["subject_id"]: e.data["evidence"]
        for e in leads_of(leads, LeadKind.UNCERTIFIED_OFFICER)
    }
    assert [o["status"] for o in uncertified["I-NOCERT"]["officers"]] == ["revoked"]
    assert [o["officer_id"] for o in uncertified["I-NOBODY"]["officers"]] == ["O-X"]
    (multi,) = leads_of(leads, LeadKind.REPEATED_INSPECTION)  # FIRM5 (joint counted once) none
    assert multi.data["subject_id"] == FIRM4 and multi.data["evidence"]["too_many_units"]
    assert multi.data["evidence"]["inspection_id"] == "I-M3"
    assert len(leads.events()) == 5
    assert sorted(e.data["subject_id"] for e in notices.events()) == [
        "I-NOBODY",
        "I-NOCERT",
        "I-NOCODE",
        "I-UNPLANNED",
    ]
    assert all(e.data["kind"] == "supervision_notice" for e in notices.events())
    assert clean["flags"] == [] and clean["planned"] is True
    assert [i["id"] for i in nocode["items"]] == ["I-NOCODE"]
    assert [o["id"] for o in revoked["items"]] == ["O-3"]
    assert flags["total"] == 5
    assert summary["inspections"] == 12 and summary["code_scanned"] == 11
    assert summary["unplanned"] == 1 and summary["uncertified"] == 2
    top = {e["enterprise"]: e for e in summary["enterprises"]}
    assert top[FIRM4] == {"enterprise": FIRM4, "visits": 3, "inspections": 4, "units": 3}
    assert top[FIRM5]["visits"] == 2 and top[FIRM5]["inspections"] == 3


async def test_certification_and_correction_rates_raise_a_lead_when_they_cross_their_line(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(
        InspectionSettings,
        certification_line=0.9,
        certification_min_officers=3,
        correction_line=0.5,
        correction_min_reviews=3,
    )
    events: KafkaTap = await tap(settings.topic_prefix + INSPECTION_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    other = "310101-cgzf"
    feed = [
        *(certified(o) for o in ("R-A", "R-B", "R-C")),  # 3/3
        withdrawn("suspended", "R-C", until="2026-06-30"),  # 2/3 → crosses below 90%
        certified("R-D"),  # 3/4 = 75%: still below, no second lead
        *(certified(o, other) for o in ("S-A", "S-B", "S-C")),  # another unit: 3/3 in its own
        review("V-1", "upheld"),
        review("V-2", "revised"),
        review("V-3", "upheld"),  # 1/3: below 50%
        review("V-4", "confirmed_illegal"),  # 2/4 = 50% → crosses
        review("V-5", "revoked"),  # 3/5: still above, no second lead
        *(review(f"W-{i}", "upheld", other) for i in range(3)),
    ]
    async with build(settings, clock=ManualClock(NOW)).running() as svc:
        await publish_all(publisher, svc, feed)
        await events.wait_for_events(recorded(events, "review/W-2"))
        await eventually(lambda: outbox_empty(svc))
        async with api_client(svc) as client:
            rates = (await client.get("/v1/inspection/rates", params={"district": "310101"})).json()
            breached = (await client.get("/v1/inspection/rates", params={"breached": True})).json()

    low = leads_of(leads, LeadKind.LOW_CERTIFICATION_RATE)
    assert sorted(e.data["subject_id"] for e in low) == ["310101", UNIT]
    unit_lead = next(e for e in low if e.data["subject_id"] == UNIT)
    assert "66.7%" in unit_lead.data["summary"] and unit_lead.data["unit"] == UNIT
    assert unit_lead.id == SupervisionLead.make_id(
        LeadKind.LOW_CERTIFICATION_RATE, f"certification:unit:{UNIT}:1"
    )
    high = leads_of(leads, LeadKind.HIGH_CORRECTION_RATE)
    assert [e.data["subject_id"] for e in high if e.data["subject_type"] == "unit_correction"] == [
        UNIT
    ]
    assert "50.0%" in high[0].data["summary"]
    by_id = {r["id"]: r for r in rates["items"]}
    assert by_id[f"certification:unit:{UNIT}"]["rate"] == 0.75
    assert by_id[f"certification:unit:{other}"]["breached"] is False
    assert by_id[f"correction:unit:{other}"]["rate"] == 0.0
    assert by_id[f"correction:unit:{UNIT}"]["numerator"] == 3
    assert {r["id"] for r in breached["items"]} == {
        f"certification:unit:{UNIT}",
        "certification:district:310101",
        f"correction:unit:{UNIT}",
    }  # the district's correction rate is 3/8: under the line
    changed = [e for e in events.events() if e.type == "jiandu.inspection.officer.changed"]
    assert {e.data["officer"]["id"] for e in changed} >= {"R-A", "R-C", "S-A"}
    suspension = next(e for e in changed if e.data["change"]["action"] == "suspended")
    assert suspension.data["officer"]["status"] == "suspended"


async def test_redelivery_changes_nothing_and_districts_stay_apart(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(InspectionSettings, repeat_max_units=2, repeat_max_visits=2)
    events: KafkaTap = await tap(settings.topic_prefix + INSPECTION_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    quarantine: KafkaTap = await tap(settings.topic_prefix + INGEST_QUARANTINE.name)
    jingan = "310106-scjg"
    first = [
        planned("P-1", UNIT, [FIRM]),
        certified("O-1"),
        inspected("I-1", FIRM, officers=("O-1",), scanned=False),
    ]
    async with build(settings, clock=ManualClock(NOW)).running() as svc:
        await publish_all(publisher, svc, first)
        await events.wait_for_events(recorded(events, "inspection/I-1"))
        await eventually(lambda: outbox_empty(svc))
        await leads.wait_for_events(lambda es: len(es) >= 1)
        before = await svc.db["inspections"].find_one({"_id": "I-1"})
        leads_before = len(leads.events())

        again = first[-1]
        conflicting = inspected("I-1", OTHER)
        await publish_all(
            publisher,
            svc,
            [
                again,  # redelivery: same event id
                again.model_copy(update={"id": f"resent-{again.id}"}),  # resent: new id
                conflicting,
                # the same enterprise by a unit of another district, with its own plan: the
                # districts' counts stay apart (2 units / 2 visits would cross in one district)
                planned("P-J", jingan, [FIRM]),
                certified("O-J", jingan),
                inspected("I-J", FIRM, unit=jingan, officers=("O-J",), scanned=False),
            ],
        )
        await events.wait_for_events(recorded(events, "inspection/I-J"))
        await leads.wait_for_events(lambda es: any(e.data["subject_id"] == "I-J" for e in es))
        await quarantine.wait_for_events(lambda es: len(es) >= 1)
        await eventually(lambda: outbox_empty(svc))
        after = await svc.db["inspections"].find_one({"_id": "I-1"})
        async with api_client(svc) as client:
            huangpu = (
                await client.get("/v1/inspection/summary", params={"district": "310101"})
            ).json()
            jingan_flags = (
                await client.get("/v1/inspection/flags", params={"district": "310106"})
            ).json()

    assert after == before
    assert leads_before == 1  # 未亮码 of I-1
    code_leads = leads_of(leads, LeadKind.CODE_NOT_SHOWN)
    assert sorted(e.data["subject_id"] for e in code_leads) == ["I-1", "I-J"]  # I-1 once
    assert len(leads.events()) == 2
    assert not leads_of(leads, LeadKind.REPEATED_INSPECTION)
    assert [e.subject for e in events.events() if e.subject == "inspection/I-1"] == [
        "inspection/I-1"
    ]
    refused = quarantine.events()
    assert len(refused) == 1 and refused[0].data["event_id"] == conflicting.id
    assert "conflicting report" in refused[0].data["reason"]
    assert huangpu["inspections"] == 1 and huangpu["code_scanned"] == 0
    assert [f["subject_id"] for f in jingan_flags["items"]] == ["I-J"]  # no 多头检查


async def test_demo_inspections_are_taken_and_show_each_fault(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    from devtools.demo.generator import DemoGenerator

    start = dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC)
    generated = DemoGenerator(seed=7, start=start).events(0, 0, n_inspections=32)
    settings = settings_for(InspectionSettings)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    async with build(settings, clock=ManualClock(start + dt.timedelta(days=30))).running() as svc:
        for _, e in generated:
            await publisher.event(svc.topic(INGEST_INSPECTIONS), e)

        async def all_taken() -> bool:
            return len(await applied_ids(svc.db)) == len(generated)

        await eventually(all_taken, timeout=60)
        await eventually(lambda: outbox_empty(svc))
        quarantined = await svc.db["quarantine"].count_documents({})
    kinds = {
        LeadKind.UNPLANNED_INSPECTION,
        LeadKind.CODE_NOT_SHOWN,
        LeadKind.UNCERTIFIED_OFFICER,
        LeadKind.REPEATED_INSPECTION,
    }
    await leads.wait_for_events(lambda es: kinds <= {LeadKind(e.data["kind"]) for e in es})
    assert quarantined == 0
    assert {e.type.rsplit(".", 1)[-1] for _, e in generated} >= {"planned", "conducted", "decided"}
