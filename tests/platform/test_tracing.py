"""One trace across processes: producer process → consumer service → its outbox event."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.envelope import Envelope
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import CASEREVIEW_EVENTS, HOTLINE_EVENTS
from shared.unit_of_work import UnitOfWork
from tests.helpers import KafkaTap

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class EchoSettings(ServiceSettings):
    service_name: str = "echo"


async def test_event_crosses_processes_with_attributes_key_and_trace(
    settings_for: Callable[..., EchoSettings], tap: Any
) -> None:
    settings = settings_for(EchoSettings)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    service = Service(settings, tracer_provider=provider)
    received: list[tuple[Envelope, str]] = []

    async def on_thing(event: Envelope, uow: UnitOfWork) -> None:
        received.append((event, event.partitionkey))
        await uow.emit(
            Envelope(
                type="test.thing.echoed",
                source=service.source,
                district=event.district,
                partitionkey=event.partitionkey,
                subject=event.subject,
                data=event.data,
            ),
            CASEREVIEW_EVENTS,
        )

    service.consume(HOTLINE_EVENTS, {"test.thing.created": on_thing})
    out: KafkaTap = await tap(service.topic(CASEREVIEW_EVENTS))
    async with service.running():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.platform.producer_process",
            settings.kafka_bootstrap,
            service.topic(HOTLINE_EVENTS),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await proc.communicate()
        assert proc.returncode == 0
        sent = json.loads(stdout.decode().strip().splitlines()[-1])
        echoed = await out.wait_for(lambda rs: len(rs) >= 1)

    event, key = received[0]
    assert event.model_dump(mode="json") == sent["event"]
    assert key == "T-1"

    trace_id = sent["trace_id"]
    consumer_spans = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.CONSUMER and format(s.context.trace_id, "032x") == trace_id
    ]
    assert consumer_spans, "the consumer span joined the producer's trace"
    assert any(
        s.parent is not None and format(s.parent.span_id, "016x") == sent["publish_span_id"]
        for s in consumer_spans
    ), "the consumer span is a child of the producer's publish span"

    downstream = dict(echoed[0].headers)
    assert echoed[0].key == b"T-1"
    traceparent = downstream["traceparent"].decode()
    assert traceparent.split("-")[1] == trace_id, "the outbox event continues the same trace"
