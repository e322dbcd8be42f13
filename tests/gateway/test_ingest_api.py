"""``POST /v1/events`` on the real embedded Kafka and MongoDB."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from services.gateway import storage
from services.gateway.domain.access import Role
from services.gateway.domain.credentials import sign, signing_secret
from services.gateway.main import build
from services.gateway.settings import GatewaySettings
from shared.consumer import QUARANTINE
from shared.envelope import MAX_EXTENSION_CHARS, MAX_EXTENSIONS
from shared.service import Service
from shared.topics import INGEST_ENFORCEMENT, INGEST_HOTLINE, INGEST_QUARANTINE
from tests.gateway.support import bearer, make_api_key, workorder
from tests.helpers import KafkaTap, api_client, key_on_same_partition

pytestmark = pytest.mark.integration

CE = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


@asynccontextmanager
async def gateway(settings: GatewaySettings) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    async with build(settings).running() as svc:
        async with api_client(svc, anonymous=True) as client:
            yield svc, client


async def test_valid_event_is_accepted_once_and_reaches_the_ingest_topic(
    settings_for: Callable[..., GatewaySettings], tap: Any
) -> None:
    settings = settings_for(GatewaySettings)
    hotline: KafkaTap = await tap(settings.topic_prefix + INGEST_HOTLINE.name)
    async with gateway(settings) as (svc, client):
        _, key = await make_api_key(svc)
        event = workorder("WO-1")
        first = await client.post(
            "/v1/events", content=json.dumps(event), headers={**CE, "X-Api-Key": key}
        )
        assert first.status_code == 202, first.text
        assert first.json()["accepted"] == [event["id"]]
        again = await client.post(
            "/v1/events", content=json.dumps(event), headers={**CE, "X-Api-Key": key}
        )
        assert again.status_code == 202
        assert again.json()["duplicates"] == [event["id"]]
        marker = workorder(key_on_same_partition("WO-1", INGEST_HOTLINE.partitions, "WO-M"))
        batch = [marker, marker]  # the same id twice in one batch is also one record
        third = await client.post(
            "/v1/events", content=json.dumps(batch), headers={**BATCH, "X-Api-Key": key}
        )
        assert third.status_code == 202 and third.json()["accepted"] == [marker["id"]]
        events = await hotline.wait_for_events(lambda es: any(e.id == marker["id"] for e in es))
    ids = [e.id for e in events]
    assert ids.count(event["id"]) == 1 and ids.count(marker["id"]) == 1
    seen = next(e for e in events if e.id == event["id"])
    assert seen.type == "gov.12345.workorder.created" and seen.partitionkey == "WO-1"
    assert seen.data["complainant"]["phone"] == "13812345678"
    record = next(r for r in hotline.records if dict(r.headers)["ce_id"] == event["id"].encode())
    assert "traceparent" in dict(record.headers)  # the ingest request's trace continues on Kafka


def _oversized() -> dict[str, Any]:
    return workorder(description="噪" * 30000)  # ~90 KB of UTF-8: over the 64 KiB event limit


def _missing_source() -> dict[str, Any]:
    event = workorder()
    del event["source"]
    return event


def _wrong_type() -> dict[str, Any]:
    event = workorder()
    event["data"]["complainant"] = "王小明 13812345678"  # must be an object
    return event


def _unknown_type() -> dict[str, Any]:
    event = workorder()
    event["type"] = "gov.12345.workorder.deleted"
    return event


def _bad_district() -> dict[str, Any]:
    event = workorder()
    event["district"] = "Jing'an"
    return event


async def test_every_kind_of_bad_input_gets_a_4xx_reason_and_is_quarantined(
    settings_for: Callable[..., GatewaySettings], tap: Any
) -> None:
    settings = settings_for(GatewaySettings, max_body_bytes=200_000)
    hotline: KafkaTap = await tap(settings.topic_prefix + INGEST_HOTLINE.name)
    announced: KafkaTap = await tap(settings.topic_prefix + INGEST_QUARANTINE.name)
    async with gateway(settings) as (svc, client):
        key_id, key = await make_api_key(svc)
        auth = {"X-Api-Key": key}
        secret = signing_secret(settings.signing_master_key, key_id)
        good = json.dumps(workorder("WO-signed")).encode()
        cases: list[tuple[str, bytes, dict[str, str], int]] = [
            ("malformed JSON", b'{"specversion": "1.0", "id": ', {**CE, **auth}, 400),
            ("not UTF-8", b"\xff\xfe{}", {**CE, **auth}, 400),
            ("missing attribute", json.dumps(_missing_source()).encode(), {**CE, **auth}, 400),
            ("bad extension", json.dumps(_bad_district()).encode(), {**CE, **auth}, 400),
            ("wrong data type", json.dumps(_wrong_type()).encode(), {**CE, **auth}, 422),
            ("unknown type", json.dumps(_unknown_type()).encode(), {**CE, **auth}, 422),
            ("oversized event", json.dumps(_oversized()).encode(), {**CE, **auth}, 413),
            ("oversized body", b"[" + b" " * 250_000 + b"]", {**BATCH, **auth}, 413),
            ("not an object", b"[1, 2]", {**CE, **auth}, 400),
            ("wrong media type", good, {"Content-Type": "text/plain", **auth}, 415),
            ("no credentials", good, CE, 401),
            ("unknown API key", good, {**CE, "X-Api-Key": "jdk_nokey_secret"}, 401),
            (
                "bad signature",
                good,
                {**CE, "X-Key-Id": key_id, "X-Signature": sign(secret, good + b" ")},
                401,
            ),
            ("empty batch", b"[]", {**BATCH, **auth}, 400),
        ]
        for name, body, headers, status in cases:
            response = await client.post("/v1/events", content=body, headers=headers)
            assert response.status_code == status, (name, response.text)
            payload = response.json()
            assert payload["accepted"] == [] and payload["detail"], name
        refused = await svc.db[QUARANTINE].find({"source": "http"}).to_list()
        assert len(refused) == len(cases)
        assert all(doc["reason"] and "raw" in doc for doc in refused)
        codes = {doc["code"] for doc in refused}
        assert {"malformed_json", "invalid", "bad_data", "unknown_type", "too_large"} <= codes
        assert {"bad_signature", "unauthenticated", "unsupported_media_type"} <= codes

        # A correct signature over the same body is accepted; a half-bad batch is a 207.
        signed = await client.post(
            "/v1/events",
            content=good,
            headers={**CE, "X-Key-Id": key_id, "X-Signature": sign(secret, good)},
        )
        assert signed.status_code == 202, signed.text
        mixed = [workorder("WO-ok"), _unknown_type()]
        partial = await client.post(
            "/v1/events", content=json.dumps(mixed), headers={**BATCH, **auth}
        )
        assert partial.status_code == 207
        body = partial.json()
        assert body["accepted"] == [mixed[0]["id"]]
        assert [(r["index"], r["code"]) for r in body["refused"]] == [(1, "unknown_type")]
        everything_bad = [_unknown_type(), _wrong_type()]
        allbad = await client.post(
            "/v1/events", content=json.dumps(everything_bad), headers={**BATCH, **auth}
        )
        assert allbad.status_code == 400 and len(allbad.json()["refused"]) == 2

        # Operators see the quarantine through the API.
        listed = await client.get(
            "/v1/quarantine",
            params={"source": "http", "limit": 100},
            headers=bearer(settings, Role.OPERATOR),
        )
        assert listed.status_code == 200 and listed.json()["total"] == len(cases) + 3
        await announced.wait_for_events(lambda es: len(es) >= len(cases) + 3)
        events = await hotline.wait_for_events(
            lambda es: any(e.partitionkey == "WO-ok" for e in es)
        )
    assert sorted(e.partitionkey for e in events) == ["WO-ok", "WO-signed"]


async def test_enforcement_events_go_to_their_topic_and_a_key_is_rate_limited(
    settings_for: Callable[..., GatewaySettings], tap: Any
) -> None:
    settings = settings_for(GatewaySettings, rate_burst=3, rate_per_s=0.01)
    cases: KafkaTap = await tap(settings.topic_prefix + INGEST_ENFORCEMENT.name)
    decided = {
        "specversion": "1.0",
        "id": "evt-penalty-1",
        "source": "/enforcement/case-system",
        "type": "gov.enforcement.penalty.decided",
        "district": "310106",
        "partitionkey": "CASE-1",
        "data": {
            "case_id": "CASE-1",
            "unit": "310106-scjg",
            "district": "310106",
            "provision": "食品安全法第一百二十四条",
            "party_type": "business",
            "fine": 200000,
            "decided_at": "2025-03-01T10:00:00+08:00",
        },
    }
    async with gateway(settings) as (svc, client):
        _, key = await make_api_key(svc)
        headers = {**CE, "X-Api-Key": key}
        statuses = []
        for _ in range(4):
            response = await client.post("/v1/events", content=json.dumps(decided), headers=headers)
            statuses.append(response.status_code)
        assert statuses == [202, 202, 202, 429]
        assert int(response.headers["Retry-After"]) >= 1
        events = await cases.wait_for_events(lambda es: len(es) >= 1)
    assert [e.id for e in events] == ["evt-penalty-1"]


def _mutations() -> list[tuple[str, Any]]:
    """Every attribute (and data field) of a valid event deleted or replaced by odd values."""
    odd: list[Any] = [None, 123, -1.5, True, [], {}, "", "x" * 300, "💥\u0000", [{"a": 1}]]
    base = workorder("WO-fuzz")
    out: list[tuple[str, Any]] = []
    for where in ("attr", "data"):
        target_keys = list(base) if where == "attr" else list(base["data"])
        for key in target_keys:
            for value in [KeyError, *odd]:
                event = json.loads(json.dumps(base))
                target = event if where == "attr" else event["data"]
                if value is KeyError:
                    del target[key]
                else:
                    target[key] = value
                out.append((f"{where}.{key}={value!r:.20}", event))
    return out


async def test_mutated_events_never_cause_a_5xx(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    settings = settings_for(GatewaySettings, rate_burst=100_000)
    async with gateway(settings) as (svc, client):
        _, key = await make_api_key(svc)
        statuses: dict[int, int] = {}
        for name, event in _mutations():
            response = await client.post(
                "/v1/events", content=json.dumps(event), headers={**CE, "X-Api-Key": key}
            )
            assert response.status_code < 500, (name, response.text)
            if response.status_code != 202:
                assert response.json()["refused"][0]["reason"], name
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        refused = sum(n for status, n in statuses.items() if status != 202)
        assert await svc.db[QUARANTINE].count_documents({"source": "http"}) == refused
    assert {400, 422} <= set(statuses)


# ------------------------------------------------------------------ standard CloudEvents


def _sdk_event(order_id: str, **extensions: Any) -> CloudEvent:
    """A work order made with the official CloudEvents SDK (time as a datetime, as it wants)."""
    base = workorder(order_id)
    attributes = {k: v for k, v in base.items() if k != "data"}
    attributes["time"] = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
    attributes.update(extensions)
    return CloudEvent(attributes=attributes, data=base["data"])


async def test_events_made_by_the_cloudevents_sdk_are_accepted_in_every_mode(
    settings_for: Callable[..., GatewaySettings], tap: Any
) -> None:
    settings = settings_for(GatewaySettings)
    hotline: KafkaTap = await tap(settings.topic_prefix + INGEST_HOTLINE.name)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    structured = _sdk_event(
        "WO-sdk-s",
        dataschema="https://jiandu.example/schemas/workorder-created.json",
        traceparent=traceparent,
        tracestate="congo=t61rcWkgMzE",
        knativearrivaltime="2025-03-03T01:00:01Z",
        priority=2,
        replayed=False,
    )
    binary = _sdk_event("WO-sdk-b", sequence="17")
    batch = [_sdk_event("WO-sdk-1"), _sdk_event("WO-sdk-2")]
    async with gateway(settings) as (svc, client):
        _, key = await make_api_key(svc)
        auth = {"X-Api-Key": key}
        message = ce_http.to_structured_event(structured)
        first = await client.post(
            "/v1/events", content=message.body, headers={**message.headers, **auth}
        )
        assert first.status_code == 202, first.text
        message = ce_http.to_binary_event(binary)
        assert "ce-id" in message.headers  # really binary mode: attributes in ce-* headers
        second = await client.post(
            "/v1/events", content=message.body, headers={**message.headers, **auth}
        )
        assert second.status_code == 202, second.text
        fmt = JSONFormat()
        body = b"[" + b",".join(fmt.write(e) for e in batch) + b"]"
        third = await client.post("/v1/events", content=body, headers={**BATCH, **auth})
        assert third.status_code == 202, third.text
        assert third.json()["accepted"] == [e.get_id() for e in batch]
        events = await hotline.wait_for_events(lambda es: len(es) >= 4)
    by_key = {e.partitionkey: e for e in events}
    assert sorted(by_key) == ["WO-sdk-1", "WO-sdk-2", "WO-sdk-b", "WO-sdk-s"]
    seen = by_key["WO-sdk-s"]  # what a consumer of the ingest topic gets
    assert seen.dataschema == "https://jiandu.example/schemas/workorder-created.json"
    assert seen.extension_attributes == {
        "traceparent": traceparent,
        "tracestate": "congo=t61rcWkgMzE",
        "knativearrivaltime": "2025-03-03T01:00:01Z",
        "priority": "2",  # Kafka headers carry the canonical string
        "replayed": "false",
    }
    assert by_key["WO-sdk-b"].extension_attributes == {"sequence": "17"}
    record = next(r for r in hotline.records if dict(r.headers)["ce_id"] == seen.id.encode())
    headers = dict(record.headers)
    assert headers["ce_priority"] == b"2"
    # The producer's trace continues on Kafka (its trace id, a new span of ours).
    assert headers["traceparent"].decode().split("-")[1] == trace_id


async def test_extension_attributes_are_bounded_and_named_per_the_spec(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    settings = settings_for(GatewaySettings)
    too_many = workorder() | {f"ext{i}": "x" for i in range(MAX_EXTENSIONS + 1)}
    bad_name = workorder() | {"Trace_Parent": "x"}
    too_long = workorder() | {"note": "x" * (MAX_EXTENSION_CHARS + 1)}
    nested = workorder() | {"labels": {"a": 1}}
    async with gateway(settings) as (svc, client):
        _, key = await make_api_key(svc)
        for event in (too_many, bad_name, too_long, nested):
            response = await client.post(
                "/v1/events", content=json.dumps(event), headers={**CE, "X-Api-Key": key}
            )
            assert response.status_code == 400, response.text
            assert response.json()["refused"][0]["code"] == "invalid"


async def test_anonymous_floods_get_429_and_only_a_bounded_sample_is_kept(
    settings_for: Callable[..., GatewaySettings], tap: Any
) -> None:
    burst, sample = 40, 5
    settings = settings_for(
        GatewaySettings,
        address_rate_burst=burst,
        address_rate_per_s=0.001,  # no refill during the test: exactly `burst` get through
        unauthenticated_sample_per_hour=sample,
    )
    announced: KafkaTap = await tap(settings.topic_prefix + INGEST_QUARANTINE.name)
    body = json.dumps(workorder()).encode()
    async with gateway(settings) as (svc, client):
        statuses: dict[int, int] = {}
        for i in range(1000):
            headers = CE if i % 2 else {**CE, "X-Api-Key": "jdk_nokey_guess"}
            response = await client.post("/v1/events", content=body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
        assert statuses == {401: burst, 429: 1000 - burst}
        assert await svc.db[QUARANTINE].count_documents({"source": "http"}) == sample
        counts = await svc.db[storage.REFUSAL_COUNTS].find().to_list()
        assert [(c["code"], c["count"]) for c in counts] == [("unauthenticated", burst)]
        listed = await client.get("/v1/ingest/refusals", headers=bearer(settings, Role.OPERATOR))
        assert listed.status_code == 200 and listed.json()["total"] == burst
        # The address bucket is checked before any key: a valid key from there waits too.
        _, key = await make_api_key(svc)
        held = await client.post("/v1/events", content=body, headers={**CE, "X-Api-Key": key})
        assert held.status_code == 429
        svc_metrics = (await client.get("/metrics")).text
        assert 'jiandu_ingest_rate_limited_total{limit="address"}' in svc_metrics
        await announced.wait_for_events(lambda es: len(es) >= sample)
    assert len(announced.events()) == sample


async def test_an_oversized_body_keeps_the_senders_key_id(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    settings = settings_for(GatewaySettings, max_body_bytes=4096)
    async with gateway(settings) as (svc, client):
        key_id, key = await make_api_key(svc)
        big = json.dumps(workorder(description="噪" * 3000)).encode()
        response = await client.post("/v1/events", content=big, headers={**CE, "X-Api-Key": key})
        assert response.status_code == 413
        secret = signing_secret(settings.signing_master_key, key_id)
        signed = await client.post(
            "/v1/events",
            content=big,
            headers={**CE, "X-Key-Id": key_id, "X-Signature": sign(secret, big)},
        )
        assert signed.status_code == 413
        docs = await svc.db[QUARANTINE].find({"code": "too_large"}).sort("at", 1).to_list()
    assert [d["key_id"] for d in docs] == [key_id, key_id]
    assert "key_verified" not in docs[0] and docs[1]["key_verified"] is False
