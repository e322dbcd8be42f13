"""Hypothesis-made bad input, sent the two ways it arrives: Kafka records and HTTP ingest.

Records: arbitrary bytes and headers, non-UTF-8, deeply nested JSON, over 64 KiB, CloudEvents
with missing or wrongly typed attributes, valid envelopes whose data breaks the contract.
Afterwards every record is accounted for (in the consumer's quarantine, on the DLT, or
processed), and the consumer still takes a good event. Over HTTP: never a 5xx, and every
refusal the gateway reports is kept in its quarantine.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.envelope import MAX_EVENT_BYTES, Envelope
from shared.topics import INGEST_ENFORCEMENT, INGEST_HOTLINE, Topic
from tests.fuzz.conftest import EXAMPLES, FuzzPlatform
from tests.gateway.support import workorder
from tests.helpers import eventually
from tests.system.accounting import read_topic

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)


def deeply_nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def ce_headers(event_type: str, **attrs: Any) -> list[tuple[str, bytes]]:
    base = {
        "ce_specversion": "1.0",
        "ce_id": f"fz-{uuid.uuid4().hex}",
        "ce_source": "/fuzz",
        "ce_type": event_type,
        "ce_district": "310101",
        "ce_partitionkey": "FZ-1",
        "content-type": "application/json",
    }
    base.update({k: v for k, v in attrs.items() if v is not None})
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in base.items()]


def bad_records(event_type: str, data_fields: list[str]) -> st.SearchStrategy[Record]:
    """Every way a record on an ingest topic can be wrong."""
    anything = st.tuples(
        st.none() | st.binary(max_size=20),
        st.binary(max_size=2000),
        st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=6),
    )
    non_utf8 = st.binary(min_size=1, max_size=200).map(lambda b: b"\xff\xfe" + b)
    bad_body = (
        st.one_of(non_utf8, json_values.map(lambda v: json.dumps(v).encode()))
        | st.integers(200, 3000).map(deeply_nested)
        | st.integers(1, 5000).map(lambda n: b'{"x": "' + b"a" * (MAX_EVENT_BYTES + n) + b'"}')
    ).map(lambda body: (b"FZ-1", body, ce_headers(event_type)))
    wrong_attributes = st.fixed_dictionaries(
        {},
        optional={
            "ce_specversion": st.sampled_from(["0.3", "2.0", "", "1"]),
            "ce_source": st.sampled_from(["", " "]),
            "ce_time": st.text(max_size=20),
            "ce_district": st.text(max_size=10),
            "ce_partitionkey": st.sampled_from(["", "x" * 500]),
        },
    ).map(lambda attrs: (b"FZ-1", b"{}", ce_headers(event_type, **attrs)))
    broken_data = st.dictionaries(st.sampled_from(data_fields), json_values, min_size=1).map(
        lambda data: (b"FZ-1", json.dumps(data).encode(), ce_headers(event_type))
    )
    return st.one_of(anything, bad_body, wrong_attributes, broken_data)


def generate(strategy: st.SearchStrategy[Record], n: int) -> list[Record]:
    found: list[Record] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(record: Record) -> None:
        found.append(record)

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
        "processed": db["inbox"].count_documents({"_id": {"$regex": f"^{consumer}:"}}),
    }


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
        ["case_id", "decided_at", "fine", "unit", "matter", "district", "circumstances"],
        id="penalty-decisions",
    ),
]


@pytest.mark.parametrize(("service", "topic", "event_type", "fields"), CASES)
def test_bad_records_are_all_accounted_for_and_the_consumer_lives_on(
    fuzz_platform: FuzzPlatform, service: str, topic: Topic, event_type: str, fields: list[str]
) -> None:
    name = topic.qualified(fuzz_platform.prefix)
    consumer = f"{service}.{topic.name}"
    before = counts(fuzz_platform, service, name, consumer)
    records = generate(bad_records(event_type, fields), EXAMPLES * 4)
    asyncio.run(publish(fuzz_platform.servers.kafka_bootstrap, name, records))

    def settled() -> dict[str, int] | None:
        now = counts(fuzz_platform, service, name, consumer)
        grown = {k: now[k] - before[k] for k in now}
        return grown if sum(grown.values()) >= len(records) else None

    grown = asyncio.run(_poll(settled, 60))
    assert sum(grown.values()) == len(records), grown
    assert grown["quarantined"] > 0, "bad records were kept with their reason"
    for doc in fuzz_platform.db(service)["quarantine"].find({"topic": name}):
        assert doc["reason"] and doc["code"], doc

    # The consumer is still alive: a good event behind the bad ones is processed.
    if service == "hotline":
        order_id = f"FZ-OK-{uuid.uuid4().hex[:6]}"
        good = Envelope.parse_attributes(workorder(order_id, district="310101"))
        key, value, headers = good.to_kafka()
        asyncio.run(
            publish(
                fuzz_platform.servers.kafka_bootstrap,
                name,
                [(key, value, [(k, v.encode()) for k, v in headers.items()])],
            )
        )
        complaints = fuzz_platform.db("hotline")["complaints"]
        assert asyncio.run(_poll(lambda: complaints.find_one({"_id": order_id}), 30))


async def _poll(check: Any, timeout: float = 60) -> Any:
    return await eventually(lambda: asyncio.to_thread(check), timeout)


bodies = st.one_of(
    st.binary(max_size=3000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(json_values, max_size=5).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["specversion", "id", "source", "type", "district", "data", "time"]),
        json_values,
    ).map(lambda d: json.dumps(d).encode()),
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
        @given(body=bodies, content_type=content_types, with_key=st.booleans())
        def send(body: bytes, content_type: str, with_key: bool) -> None:
            nonlocal refused
            headers = {"Content-Type": content_type} if content_type else {}
            if with_key:
                headers["X-Api-Key"] = fuzz_platform.headers["X-Api-Key"]
            response = client.post(url, content=body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, response.text
            refused += len(response.json().get("refused") or [])

        send()
    assert refused > 0 and any(400 <= s < 500 for s in statuses), statuses
    assert quarantine.count_documents({"source": "http"}) - before == refused
