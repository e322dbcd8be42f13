"""Throughput (issue #18): a batch of inspection events reads MongoDB with a handful of
queries (prefetch and batch look-ups), not queries per event, and still sees its own writes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pymongo import monitoring

from services.inspection.main import build
from services.inspection.settings import InspectionSettings
from shared.clock import ManualClock
from shared.contracts import LeadKind
from shared.envelope import Envelope
from shared.topics import INGEST_INSPECTIONS, INSPECTION_EVENTS, SUPERVISION_LEADS
from tests.helpers import KafkaTap, Publisher, applied_ids, eventually
from tests.inspection.test_service import (
    FIRM,
    NOW,
    OTHER,
    UNIT,
    Settings,
    certified,
    inspected,
    leads_of,
    planned,
    review,
)

pytestmark = pytest.mark.integration

STATE = ("plans", "inspections", "officers", "reviews", "rates", "flags")
"""The inspection's own collections (the inbox, outbox and timers are the runtime's)."""


def feed() -> list[Envelope]:
    """Plans, certificates, 60 inspections of 12 firms by two units (some by an officer
    certified earlier in the same batch, some by one never certified) and reviews."""
    other_unit = "310101-cgzf"
    firms = [FIRM, OTHER, *(f"91310101MA1FL1{n:02d}XX" for n in range(10))]
    events = [
        planned("P-1", UNIT, firms),
        planned("P-2", other_unit, firms),
        *(certified(f"O-{n}") for n in range(1, 4)),
        certified("O-4", other_unit),
    ]
    for n in range(60):
        unit = UNIT if n % 2 else other_unit
        officers = ("O-4",) if unit == other_unit else ("O-1", "O-X" if n % 10 == 1 else "O-2")
        events.append(
            inspected(f"I-{n}", firms[n % 12], unit=unit, officers=officers, day=1 + n % 20)
        )
    events += [review(f"R-{n}", "revised" if n % 3 else "upheld") for n in range(12)]
    return events


async def test_a_batch_reads_state_with_a_handful_of_queries_not_one_per_event(
    settings_for: Settings, publisher: Publisher, tap: Any
) -> None:
    settings = settings_for(InspectionSettings, batch_max_records=500)
    events: KafkaTap = await tap(settings.topic_prefix + INSPECTION_EVENTS.name)
    leads: KafkaTap = await tap(settings.topic_prefix + SUPERVISION_LEADS.name)
    sent = feed()
    for e in sent:  # all waiting before the service starts: they come in large batches
        await publisher.event(settings.topic_prefix + INGEST_INSPECTIONS.name, e)
    service = build(settings, clock=ManualClock(NOW))
    finds: Counter[str] = Counter()
    counter = service.mongo_commands
    count = counter.started

    def started(event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command["find"] in STATE:
            finds[event.command["find"]] += 1
        count(event)

    counter.started = started  # type: ignore[method-assign]
    async with service.running() as svc:

        async def all_taken() -> bool:
            return len(await applied_ids(svc.db)) == len(sent)

        await eventually(all_taken, timeout=60)
        await events.wait_for_events(lambda es: len(es) >= len(sent) - 1)
    consumer = next(iter(service.consumers.values()))
    assert consumer.largest_batch >= 20, "the events came in large batches"
    # what the batch saw of itself: O-1..O-3 certified in it are valid, O-X is not; the
    # plans filed in it cover every firm; the repeated visits counted across the batch
    uncertified = leads_of(leads, LeadKind.UNCERTIFIED_OFFICER)
    assert sorted(e.data["subject_id"] for e in uncertified) == [
        f"I-{n}" for n in (1, 11, 21, 31, 41, 51)
    ]
    assert not leads_of(leads, LeadKind.UNPLANNED_INSPECTION)
    assert leads_of(leads, LeadKind.REPEATED_INSPECTION)
    # one query per collection and look-up a batch (and a few look-ups on a miss), where
    # per-event queries took two or more for every inspection (plans, visits, flags...)
    # (this feed in one batch: 15 finds; with queries per event it took 293)
    assert sum(finds.values()) <= 12 * consumer.transactions + 8, finds
    assert sum(finds.values()) < len(sent) / 2, finds
