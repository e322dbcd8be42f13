"""Hypothesis-made bad input, sent the two ways it arrives: Kafka records and HTTP ingest.

Records: arbitrary bytes and headers, non-UTF-8, malformed and deeply nested JSON, over
64 KiB, CloudEvents with missing or wrongly typed attributes, types no service knows, valid
envelopes whose data breaks the type's contract. Afterwards every record is accounted for
(``sent == quarantined + dead-lettered + processed``) and the consumer still takes a good
event. Over HTTP: never a 5xx, every refusal says why, and every refused event is kept in
the gateway's quarantine.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.envelope import MAX_EVENT_BYTES, Envelope
from shared.topics import (
    EXTERNAL_TYPE_TOPICS,
    INGEST_ENFORCEMENT,
    INGEST_HOTLINE,
    INGEST_INSPECTIONS,
    Topic,
)
from tests.fuzz.conftest import EXAMPLES, FuzzPlatform
from tests.gateway.support import workorder
from tests.helpers import eventually
from tests.system.accounting import read_topic

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]

REQUIRED_HEADERS = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_district",
    "ce_partitionkey",
)
UNKNOWN_TYPES = [
    "gov.12345.workorder.deleted",
    "gov.enforcement.penalty.decided.v2",
    "GOV.12345.WORKORDER.CREATED",
    "jiandu.hotline.complaint.created",  # an internal type on an ingest topic
    "x" * 300,
]
FOOD_124 = "《中华人民共和国食品安全法》第一百二十四条"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)


def deeply_nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def oversize(extra: int) -> bytes:
    return b'{"x": "' + b"a" * (MAX_EVENT_BYTES + extra) + b'"}'


def ce_headers(
    event_type: str,
    attrs: dict[str, str | bytes] | None = None,
    drop: frozenset[str] = frozenset(),
) -> list[tuple[str, bytes]]:
    """Binary-mode CloudEvent headers, with ``attrs`` replaced and ``drop`` left out."""
    base: dict[str, str | bytes] = {
        "ce_specversion": "1.0",
        "ce_id": f"fz-{uuid.uuid4().hex}",
        "ce_source": "/fuzz",
        "ce_type": event_type,
        "ce_district": "310101",
        "ce_partitionkey": "FZ-1",
        "content-type": "application/json",
    }
    base.update(attrs or {})
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in base.items() if k not in drop]


def bad_records(event_type: str, data_fields: list[str]) -> st.SearchStrategy[Record]:
    """Every way a record on an ingest topic can be wrong."""
    anything = st.tuples(
        st.none() | st.binary(max_size=20),
        st.binary(max_size=2000),
        st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=6),
    )
    non_utf8 = st.binary(min_size=1, max_size=200).map(lambda b: b"\xff\xfe" + b)
    malformed_json = st.sampled_from([b"{", b'{"a": }', b"[1, 2", b"nul", b"{'a': 1}", b""])
    bad_body = (
        st.one_of(non_utf8, malformed_json, json_values.map(lambda v: json.dumps(v).encode()))
        | st.integers(200, 3000).map(deeply_nested)
        | st.integers(1, 5000).map(oversize)
    ).map(lambda body: (b"FZ-1", body, ce_headers(event_type)))
    missing_attributes = st.frozensets(st.sampled_from(REQUIRED_HEADERS), min_size=1).map(
        lambda drop: (b"FZ-1", b"{}", ce_headers(event_type, drop=drop))
    )
    wrong_attributes = st.fixed_dictionaries(
        {},
        optional={
            "ce_specversion": st.sampled_from(["0.3", "2.0", "", "1"]) | st.binary(max_size=8),
            "ce_id": st.sampled_from(["", "i" * 300]),
            "ce_source": st.sampled_from(["", " "]),
            "ce_time": st.text(max_size=20) | st.sampled_from(["yesterday", "2025-13-40", "1e9"]),
            "ce_district": st.text(max_size=10),
            "ce_partitionkey": st.sampled_from(["", "x" * 500]),
        },
    ).map(lambda attrs: (b"FZ-1", b"{}", ce_headers(event_type, attrs)))
    unknown_type = (
        (st.sampled_from(UNKNOWN_TYPES) | st.text(min_size=1, max_size=60))
        .filter(lambda t: t not in EXTERNAL_TYPE_TOPICS)
        .map(lambda t: (b"FZ-1", b'{"order_id": "FZ-1"}', ce_headers(t)))
    )
    broken_data = st.dictionaries(st.sampled_from(data_fields), json_values, min_size=1).map(
        lambda data: (b"FZ-1", json.dumps(data).encode(), ce_headers(event_type))
    )
    return st.one_of(
        anything, bad_body, missing_attributes, wrong_attributes, unknown_type, broken_data
    )


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    found: list[Any] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


async def publish(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * MAX_EVENT_BYTES)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def counts(platform: FuzzPlatform, service: str, topic: str, consumer: str) -> dict[str, int]:
    db = platform.db(service)
    dead = asyncio.run(read_topic(platform.servers.kafka_bootstrap, f"{topic}.dlt"))
    return {
        "quarantined": db["quarantine"].count_documents({"topic": topic}),
        "dead_lettered": sum(
            1 for r in dead if (dict(r.headers).get("x-consumer") or b"").decode() == consumer
        ),
        "processed": sum(
            1
            for doc in db["inbox"].find({}, {"ids": 1})
            for inbox_id in doc["ids"]
            if inbox_id.startswith(f"{consumer}:")
        ),
    }


def good_event(service: str) -> Envelope:
    """A valid event the service processes, sent behind the bad ones."""
    entity = f"FZ-OK-{uuid.uuid4().hex[:6]}"
    if service == "hotline":
        return Envelope.parse_attributes(workorder(entity, district="310101"))
    if service == "inspection":
        return Envelope(
            type="gov.enforcement.review.decided",
            source="/fuzz/court",
            district="310106",
            partitionkey=entity,
            data={
                "review_id": entity,
                "case_id": f"C-{entity}",
                "unit": "310106-scjg",
                "district": "310106",
                "channel": "litigation",
                "outcome": "upheld",
                "decided_at": datetime.now(UTC).isoformat(),
            },
        )
    return Envelope(
        type="gov.enforcement.penalty.decided",
        source="/fuzz/case-system",
        district="310106",
        partitionkey=entity,
        data={
            "case_id": entity,
            "unit": "310106-scjg",
            "district": "310106",
            "provision": FOOD_124,
            "party_type": "business",
            "fine": 100000,
            "decided_at": datetime.now(UTC).isoformat(),
            "circumstances": [],
        },
    )


CASES = [
    pytest.param(
        "hotline",
        INGEST_HOTLINE,
        "gov.12345.workorder.created",
        ["order_id", "received_at", "district", "category", "complainant", "channel"],
        id="hotline-workorders",
    ),
    pytest.param(
        "penalty",
        INGEST_ENFORCEMENT,
        "gov.enforcement.penalty.decided",
        ["case_id", "decided_at", "fine", "unit", "provision", "district", "party_type"],
        id="penalty-decisions",
    ),
    pytest.param(
        "inspection",
        INGEST_INSPECTIONS,
        "gov.enforcement.inspection.conducted",
        ["inspection_id", "at", "enterprise", "officers", "unit", "district", "code_scanned"],
        id="inspection-inspections",
    ),
]


@pytest.mark.parametrize(("service", "topic", "event_type", "fields"), CASES)
def test_bad_records_are_all_accounted_for_and_the_consumer_lives_on(
    fuzz_platform: FuzzPlatform, service: str, topic: Topic, event_type: str, fields: list[str]
) -> None:
    name = topic.qualified(fuzz_platform.prefix)
    consumer = f"{service}.{topic.name}"
    before = counts(fuzz_platform, service, name, consumer)
    records: list[Record] = generate(bad_records(event_type, fields), EXAMPLES * 4)
    asyncio.run(publish(fuzz_platform.servers.kafka_bootstrap, name, records))

    last: dict[str, int] = {}

    def settled() -> dict[str, int] | None:
        now = counts(fuzz_platform, service, name, consumer)
        last.update({k: now[k] - before[k] for k in now})
        return dict(last) if sum(last.values()) >= len(records) else None

    try:
        # every service on the topic quarantines each record in a transaction: allow for it
        grown = asyncio.run(_poll(settled, 60 + len(records) / 4))
    except AssertionError as exc:
        raise AssertionError(f"{len(records)} sent, only {last} accounted for") from exc
    print(f"\n{service}: sent {len(records)} bad records → {grown}")
    assert sum(grown.values()) == len(records), (len(records), grown)
    assert grown["quarantined"] > 0, "bad records were kept with their reason"
    for doc in fuzz_platform.db(service)["quarantine"].find({"topic": name}):
        assert doc["reason"] and doc["code"], doc

    # The consumer is still alive: a good event behind the bad ones is processed.
    good = good_event(service)
    key, value, headers = good.to_kafka()
    asyncio.run(
        publish(
            fuzz_platform.servers.kafka_bootstrap,
            name,
            [(key, value, [(k, v.encode()) for k, v in headers.items()])],
        )
    )
    inbox = fuzz_platform.db(service)["inbox"]
    assert asyncio.run(_poll(lambda: inbox.find_one({"ids": f"{consumer}:{good.id}"}), 30))


async def _poll(check: Any, timeout: float = 60) -> Any:
    return await eventually(lambda: asyncio.to_thread(check), timeout)


def invalid_events() -> st.SearchStrategy[dict[str, Any]]:
    """Structured-mode CloudEvents that are almost right: one thing broken each."""
    base = st.builds(lambda: workorder(f"FZ-{uuid.uuid4().hex[:6]}"))
    missing = st.tuples(
        base,
        st.frozensets(
            st.sampled_from(["id", "source", "specversion", "type", "district", "partitionkey"]),
            min_size=1,
        ),
    ).map(lambda p: {k: v for k, v in p[0].items() if k not in p[1]})
    wrong = st.tuples(
        base,
        st.sampled_from(["id", "source", "specversion", "type", "district", "time", "data"]),
        json_values,
    ).map(lambda p: {**p[0], p[1]: p[2]})
    unknown = st.tuples(base, st.sampled_from(UNKNOWN_TYPES)).map(lambda p: {**p[0], "type": p[1]})
    bad_data = st.tuples(
        base,
        st.dictionaries(
            st.sampled_from(["order_id", "received_at", "district", "channel", "complainant"]),
            json_values,
            min_size=1,
        ),
    ).map(lambda p: {**p[0], "data": {**p[0]["data"], **p[1]}})
    too_large = base.map(lambda e: {**e, "data": {**e["data"], "description": "噪" * 30_000}})
    return st.one_of(missing, wrong, unknown, bad_data, too_large)


bodies = st.one_of(
    st.binary(max_size=3000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(json_values, max_size=5).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["specversion", "id", "source", "type", "district", "data", "time"]),
        json_values,
    ).map(lambda d: json.dumps(d).encode()),
    invalid_events().map(lambda e: json.dumps(e).encode()),
    st.lists(invalid_events(), min_size=1, max_size=4).map(lambda v: json.dumps(v).encode()),
    st.integers(200, 3000).map(deeply_nested),
    st.just(b"x" * (1024 * 1024 + 10)),
)
content_types = st.sampled_from(
    [
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/json",
        "text/plain",
        "application/cloudevents+json; charset=latin-1",
        "",
    ]
)


def test_gateway_ingest_never_fails_and_keeps_every_refusal(fuzz_platform: FuzzPlatform) -> None:
    quarantine = fuzz_platform.db("gateway")["quarantine"]
    before = quarantine.count_documents({"source": "http"})
    refused = 0
    statuses: dict[int, int] = {}
    url = f"{fuzz_platform.urls['gateway']}/v1/events"
    with httpx.Client(timeout=30) as client:

        @settings(
            max_examples=EXAMPLES * 6,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            body=bodies, content_type=content_types, with_key=st.sampled_from([True, True, False])
        )
        def send(body: bytes, content_type: str, with_key: bool) -> None:
            nonlocal refused
            headers = {"Content-Type": content_type} if content_type else {}
            if with_key:
                headers["X-Api-Key"] = fuzz_platform.headers["X-Api-Key"]
            response = client.post(url, content=body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.text
            answer = response.json()
            reasons = answer.get("refused") or []
            if 400 <= response.status_code < 500:
                # a clear error: a detail, and each refused event with its code and reason
                assert answer.get("detail") or reasons, answer
                assert all(r.get("code") and r.get("reason") for r in reasons), answer
            refused += len(reasons)

        send()
    print(f"\ngateway ingest: statuses {dict(sorted(statuses.items()))}, refused {refused}")
    assert refused > 0 and any(400 <= s < 500 for s in statuses), statuses
    assert quarantine.count_documents({"source": "http"}) - before == refused
