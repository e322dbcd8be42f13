"""Throughput (issue #18): the fine-anomaly judgement reads fine totals kept as data (one
document per unit kind and month), never aggregates filings per decided penalty; a changed
decision moves its contribution; an older database gets its totals built once at start."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from pymongo import monitoring

from services.penalty import storage
from services.penalty.domain.anomaly import MonthTotal, assess_unit_month, trailing_months
from services.penalty.domain.records import Filing
from services.penalty.handlers import PenaltyWorkflow
from services.penalty.main import build
from services.penalty.settings import PenaltySettings
from shared.clock import ManualClock
from shared.contracts import LeadKind, PenaltyDecided
from shared.envelope import Envelope
from shared.mongo import Document
from shared.service import Service
from shared.topics import INGEST_ENFORCEMENT, PENALTY_EVENTS, SUPERVISION_LEADS
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST
from tests.helpers import KafkaTap, Publisher, applied_ids, eventually
from tests.penalty.test_service import (
    DAQI_118,
    FOOD_124,
    Settings,
    decided,
    has,
    leads_of,
    outbox_empty,
)

pytestmark = pytest.mark.integration

STATE = (storage.FILINGS, storage.FLAGS, storage.ANOMALIES, storage.LETTERS, storage.FINE_TOTALS)
"""The penalty's own collections (the inbox, outbox and timers are the runtime's)."""
UNIT = "310106-sthj"
MARCH = dt.datetime(2025, 3, 10, 10, 0, tzinfo=CST)
ANOMALY_SETTINGS: dict[str, Any] = {
    "anomaly_history_months": 2,
    "anomaly_min_history_months": 2,
    "anomaly_own_growth": 1.0,
    "anomaly_peer_ratio": 3.0,
    "anomaly_min_peers": 3,
    "anomaly_min_amount": 10000,
}


def history_and_peers() -> list[Envelope]:
    """The unit's January and February (10,000 元 each) and three peers in March."""
    return [
        decided("A-JAN", unit=UNIT, provision=DAQI_118, fine=10000, at=MARCH.replace(month=1)),
        decided("A-FEB", unit=UNIT, provision=DAQI_118, fine=10000, at=MARCH.replace(month=2)),
        *(
            decided(f"P-{peer}", unit=f"{peer}-sthj", provision=DAQI_118, fine=10000, at=MARCH)
            for peer in ("310101", "310104", "310105")
        ),
    ]


def march(*numbers: int) -> list[Envelope]:
    return [
        decided(f"A-MAR-{n}", unit=UNIT, provision=DAQI_118, fine=10000, at=MARCH) for n in numbers
    ]


async def send(svc: Service, publisher: Publisher, feed: Sequence[Envelope]) -> None:
    for event in feed:  # one partition key: processed in this order
        await publisher.event(
            svc.topic(INGEST_ENFORCEMENT), event.model_copy(update={"partitionkey": "feed"})
        )


async def stored_totals(svc: Service) -> list[Document]:
    return await svc.db[storage.FINE_TOTALS].find({}).sort("_id", 1).to_list()


async def aggregated_totals(svc: Service) -> list[Document]:
    """What one aggregation over the decided filings gives (the start-up build's input)."""
    return [t.to_doc() for t in await storage.fine_totals_from_filings(svc.db)]


async def old_judgement(svc: Service, unit: str, kind: str, month: str) -> dict[str, Any]:
    """The judgement of a unit-month as the per-event aggregations gave it (the reference)."""
    settings = svc.component(PenaltyWorkflow).thresholds
    months = trailing_months(month, settings.history_months)
    filings = svc.db[storage.FILINGS]
    own = await (
        await filings.aggregate(
            [
                {"$match": {"decided": True, "unit": unit, "month": {"$in": [*months, month]}}},
                {"$group": {"_id": "$month", "total": {"$sum": "$fine"}, "count": {"$sum": 1}}},
            ]
        )
    ).to_list()
    peers = await (
        await filings.aggregate(
            [
                {
                    "$match": {
                        "decided": True,
                        "unit_kind": kind,
                        "month": month,
                        "unit": {"$ne": unit},
                    }
                },
                {"$group": {"_id": "$unit", "total": {"$sum": "$fine"}, "count": {"$sum": 1}}},
                {"$sort": {"_id": 1}},
            ]
        )
    ).to_list()
    totals = {r["_id"]: MonthTotal(total=r["total"], count=r["count"]) for r in own}
    current = totals.pop(month, MonthTotal(total=0.0, count=0))
    peer_totals = [MonthTotal(total=r["total"], count=r["count"]) for r in peers]
    assessment = assess_unit_month(unit, month, current, totals, peer_totals, settings)
    return assessment.model_dump(include={"total", "count", "anomalous", "rules", "explanation"})


async def judged(svc: Service, unit: str, month: str) -> dict[str, Any]:
    doc = await svc.db[storage.ANOMALIES].find_one({"_id": f"{unit}:{month}"})
    assert doc is not None
    return {k: doc[k] for k in ("total", "count", "anomalous", "rules", "explanation")}


async def test_a_batch_of_decisions_reads_fine_totals_by_id_and_never_aggregates(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(PenaltySettings, batch_max_records=500, **ANOMALY_SETTINGS)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    units = [
        f"{district}-{kind}"
        for district in ("310101", "310104", "310106")
        for kind in ("sthj", "scjg")
    ]
    sent = []
    for n in range(48):  # 6 units of 2 kinds, 3 months; a quarter top-tier (and large)
        unit = units[n % len(units)]
        provision = DAQI_118 if unit.endswith("sthj") else FOOD_124
        top = 50000 if provision == DAQI_118 else 100000
        fine = top if n % 4 == 1 else (5000 if provision == DAQI_118 else 50000) + 500 * n
        at = MARCH.replace(month=1 + (n // 6) % 3, day=1 + n % 20)
        sent.append(decided(f"B-{n}", unit=unit, provision=provision, fine=fine, at=at))
    for event in sent:  # all waiting before the service starts: they come in large batches
        await publisher.event(settings.topic_prefix + INGEST_ENFORCEMENT.name, event)
    service = build(settings, clock=ManualClock(MARCH))
    commands: Counter[tuple[str, str]] = Counter()
    counter = service.mongo_commands
    count = counter.started

    def started(event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in ("find", "aggregate") and event.command[name] in STATE:
            commands[(name, event.command[name])] += 1
        count(event)

    counter.started = started  # type: ignore[method-assign]
    async with service.running() as svc:

        async def all_taken() -> bool:
            return len(await applied_ids(svc.db)) == len(sent)

        await eventually(all_taken, timeout=60)
        await events.wait_for_events(lambda es: sum(e.type.endswith("decided") for e in es) >= 48)
        await eventually(lambda: outbox_empty(svc))
        ran = Counter(commands)  # what the service ran (not the test's reads below)
        stored, aggregated = await stored_totals(svc), await aggregated_totals(svc)
        unit_months = await svc.db[storage.ANOMALIES].find({}).to_list()

    consumer = next(iter(service.consumers.values()))
    assert consumer.largest_batch >= 10, "the events came in large batches"
    aggregates = sum(n for (name, _), n in ran.items() if name == "aggregate")
    finds = sum(n for (name, _), n in ran.items() if name == "find")
    # before: two aggregations and an anomaly find for every decided penalty (96 + 48)
    assert aggregates == 0, ran
    # one query per collection a batch (filings, fine totals, anomalies, flags)
    assert finds <= 4 * consumer.transactions + 4, ran
    assert finds < len(sent) / 4, ran
    # the totals kept penalty by penalty are what the filings add up to
    assert stored == aggregated and len(stored) == 6  # 2 kinds × 3 months
    assert len(unit_months) == 18  # 6 units × 3 months
    by_id = {f"{unit['unit']}:{doc['month']}": unit for doc in stored for unit in doc["units"]}
    for doc in unit_months:  # each judged with its unit-month's every penalty counted
        assert (doc["total"], doc["count"]) == (
            by_id[doc["_id"]]["total"],
            by_id[doc["_id"]]["count"],
        )


async def test_a_changed_decision_moves_its_contribution(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    """A peer's March penalty becomes a February one, the unit's first March penalty grows
    to 30,000 元: the totals follow, and the unit's March is judged as aggregating the
    filings judges it (two peers left: no peer comparison; 300% own growth)."""
    settings = settings_for(PenaltySettings, **ANOMALY_SETTINGS)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    async with build(settings, clock=ManualClock(MARCH)).running() as svc:
        await send(svc, publisher, [*history_and_peers(), *march(1, 2)])
        await events.wait_for_events(has(events, "A-MAR-2", "decided"))
        workflow = svc.component(PenaltyWorkflow)

        async def redecide(uow: UnitOfWork, case_id: str, fine: float, at: dt.datetime) -> Filing:
            filing = await storage.filings(uow).get(case_id)
            assert filing is not None
            counted = filing.contribution()
            decision = PenaltyDecided.model_validate(
                {
                    **decided(case_id, unit=filing.unit, provision=DAQI_118).data,
                    "fine": fine,
                    "decided_at": at.isoformat(),
                }
            )
            filing.decide(decision, f"redecided-{case_id}", workflow.catalogue.version)
            workflow.save(uow, filing)
            await workflow.count_fine(uow, counted, filing)
            return filing

        async def change(uow: UnitOfWork) -> None:
            await redecide(uow, "P-310101", 5000, MARCH.replace(month=2))
            await redecide(uow, "A-MAR-1", 30000, MARCH)

        await svc.run_in_uow(change)
        stored, aggregated = await stored_totals(svc), await aggregated_totals(svc)
        now = await judged(svc, UNIT, "2025-03")
        reference = await old_judgement(svc, UNIT, "environment", "2025-03")
        peer_now = await judged(svc, "310101-sthj", "2025-02")
        peer_reference = await old_judgement(svc, "310101-sthj", "environment", "2025-02")

    assert stored == aggregated
    (march_totals,) = [doc for doc in stored if doc["_id"] == "environment:2025-03"]
    assert [u["unit"] for u in march_totals["units"]] == ["310104-sthj", "310105-sthj", UNIT]
    assert now == reference
    assert (now["total"], now["count"]) == (40000, 2)
    assert [r["applicable"] for r in now["rules"]] == [True, False]  # two peers left
    assert peer_now == peer_reference and peer_now["total"] == 5000


async def test_an_older_database_gets_its_fine_totals_built_once_at_start(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    """The history and the peers were decided before fine totals existed: the start builds
    them, and March is judged as before (the lead at the second March penalty, 100%)."""
    settings = settings_for(PenaltySettings, **ANOMALY_SETTINGS)
    events: KafkaTap = await tap(settings.topic_prefix + PENALTY_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    async with build(settings, clock=ManualClock(MARCH)).running() as svc:
        await send(svc, publisher, history_and_peers())
        await events.wait_for_events(has(events, "P-310105", "decided"))
        await eventually(lambda: outbox_empty(svc))
        before = await stored_totals(svc)
        await svc.db[storage.FINE_TOTALS].delete_many({})  # as an older version left it

    async with build(settings, clock=ManualClock(MARCH)).running() as svc:
        built = await stored_totals(svc)
        again = await storage.build_fine_totals(svc.db)
        await send(svc, publisher, march(1, 2, 3))
        await events.wait_for_events(has(events, "A-MAR-3", "decided"))
        await eventually(lambda: outbox_empty(svc))
        march_judged = await judged(svc, UNIT, "2025-03")
    # published is not yet read: the taps may still be fetching the anomaly and its lead
    await events.wait_for_events(lambda es: any(e.type.endswith("anomaly_detected") for e in es))
    await leads.wait_for_events(lambda _: bool(leads_of(leads, LeadKind.FINE_ANOMALY)))

    assert built == before and len(built) == 3  # environment: January, February, March
    assert again == 0, "built once: totals present are left alone"
    detected = [e.partitionkey for e in events.events() if e.type.endswith("anomaly_detected")]
    assert detected == ["A-MAR-2"]
    (lead,) = leads_of(leads, LeadKind.FINE_ANOMALY)
    assert "20,000 元" in lead.data["summary"] and "100.0%" in lead.data["summary"]
    assert (march_judged["total"], march_judged["count"]) == (30000, 3)
