"""Run as a separate process by test_tracing: publishes one CloudEvent inside a span.

Prints one JSON line: the event as sent, and the ids of the producer's publish span.
"""

from __future__ import annotations

import asyncio
import json
import sys

from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.envelope import Envelope


async def main(bootstrap: str, topic: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = KafkaBroker(
        bootstrap, middlewares=(KafkaTelemetryMiddleware(tracer_provider=provider),)
    )
    event = Envelope(
        type="test.thing.created",
        source="/tests/producer",
        subject="thing/T-1",
        district="310115",
        partitionkey="T-1",
        data={"name": "浦东", "n": 1},
    )
    key, value, headers = event.to_kafka()
    async with broker:
        await broker.start()
        with provider.get_tracer("producer").start_as_current_span("ingest request"):
            await broker.publish(value, topic=topic, key=key, headers=headers)
    spans = exporter.get_finished_spans()
    publish = next(s for s in spans if s.kind == SpanKind.PRODUCER)
    print(
        json.dumps(
            {
                "event": event.model_dump(mode="json"),
                "trace_id": format(publish.context.trace_id, "032x"),
                "publish_span_id": format(publish.context.span_id, "016x"),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
