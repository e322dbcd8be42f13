"""The demo feeds on the real embedded Kafka: what goes out comes back intact."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import defaultdict
from typing import Any

import pytest

from devtools.demo import DemoGenerator
from devtools.demo.feed import LiveFeedThread, live_feed, publish
from devtools.embedded import EmbeddedServers
from shared.contracts import validate_external
from shared.envelope import Envelope
from shared.topics import EXTERNAL_TYPE_TOPICS, INGEST_ENFORCEMENT, INGEST_HOTLINE
from tests.helpers import KafkaTap

pytestmark = pytest.mark.integration

START = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)


def sample(n_hotline: int, n_enforcement: int) -> list[tuple[dt.datetime, Envelope]]:
    """The first events of a generated story, from both ingest topics, still in time order."""
    events = DemoGenerator(21, START).events(200, 60)
    hotline = [p for p in events if p[1].type.startswith("gov.12345.")][:n_hotline]
    enforcement = [p for p in events if EXTERNAL_TYPE_TOPICS[p[1].type] is INGEST_ENFORCEMENT]
    enforcement = enforcement[:n_enforcement]
    return sorted(hotline + enforcement, key=lambda p: p[0])


async def test_published_events_come_back_intact_on_their_topics(
    servers: EmbeddedServers, prefix: str, topics: list[str], tap: Any
) -> None:
    events = sample(38, 12)
    assert len(events) == 50
    hot: KafkaTap = await tap(INGEST_HOTLINE.qualified(prefix))
    enf: KafkaTap = await tap(INGEST_ENFORCEMENT.qualified(prefix))

    sent = await publish(events, servers.kafka_bootstrap, prefix=prefix, progress=False)

    assert sent == 50
    back_hot = await hot.wait_for_events(lambda es: len(es) >= 38)
    back_enf = await enf.wait_for_events(lambda es: len(es) >= 12)
    published = {e.id: e for _, e in events}
    assert len(back_hot) + len(back_enf) == 50
    for got in back_hot + back_enf:
        original = published[got.id]
        assert got == original  # every attribute and the whole data, after a Kafka round trip
        validate_external(got)
    assert all(EXTERNAL_TYPE_TOPICS[e.type] is INGEST_HOTLINE for e in back_hot)
    assert all(EXTERNAL_TYPE_TOPICS[e.type] is INGEST_ENFORCEMENT for e in back_enf)
    for tapped in (hot, enf):  # binary mode: ce_* headers, keyed by the entity id
        for record in tapped.records:
            headers = dict(record.headers or ())
            assert record.key == headers["ce_partitionkey"]
            assert headers["ce_id"].decode() in published
    # one entity's events keep their order (same key, same partition)
    order: dict[str, list[str]] = defaultdict(list)
    for _, e in events:
        order[e.partitionkey].append(e.id)
    arrived: dict[str, list[str]] = defaultdict(list)
    for record in sorted(hot.records + enf.records, key=lambda r: (r.partition, r.offset)):
        got = Envelope.from_kafka(record.value or b"", list(record.headers or ()), record.key)
        arrived[got.partitionkey].append(got.id)
    assert arrived == order


async def test_replay_at_speed_delivers_the_same_events(
    servers: EmbeddedServers, prefix: str, topics: list[str], tap: Any
) -> None:
    events = sample(6, 0)  # a few hours of story, replayed at a huge speed-up
    span = (events[-1][0] - events[0][0]).total_seconds()
    hot: KafkaTap = await tap(INGEST_HOTLINE.qualified(prefix))
    sent = await publish(
        events, servers.kafka_bootstrap, prefix=prefix, speed=max(span, 1.0) * 2, progress=False
    )
    back = await hot.wait_for_events(lambda es: len(es) >= len(events))
    assert sent == len(events)
    assert sorted(e.id for e in back) == sorted(e.id for _, e in events)


async def test_live_feed_streams_whole_stories_never_dated_in_the_future(
    servers: EmbeddedServers, prefix: str, topics: list[str], tap: Any
) -> None:
    hot: KafkaTap = await tap(INGEST_HOTLINE.qualified(prefix))
    feed = asyncio.create_task(
        live_feed(servers.kafka_bootstrap, seed=9, rate_per_s=200, prefix=prefix)
    )
    try:

        def has_updates(es: list[Envelope]) -> bool:
            created = {e.partitionkey for e in es if e.type.endswith("created")}
            return any(e.type.endswith("updated") and e.partitionkey in created for e in es)

        got = await hot.wait_for_events(lambda es: len(es) >= 30 and has_updates(es), timeout=20)
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
    now = dt.datetime.now(dt.UTC)
    assert all(e.time <= now for e in got)
    for e in got:
        validate_external(e)


async def test_live_feed_thread_brings_case_files_too_and_stops_cleanly(
    servers: EmbeddedServers, prefix: str, topics: list[str], tap: Any
) -> None:
    enf: KafkaTap = await tap(INGEST_ENFORCEMENT.qualified(prefix))
    feed = LiveFeedThread(servers.kafka_bootstrap, seed=4, rate_per_s=200, prefix=prefix).start()
    try:
        got = await enf.wait_for_events(
            lambda es: any(e.type == "gov.enforcement.case.closed" for e in es), timeout=20
        )
    finally:
        await asyncio.to_thread(feed.stop)
    assert not feed.alive and feed.error is None
    assert all(e.time <= dt.datetime.now(dt.UTC) for e in got)
