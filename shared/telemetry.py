"""OpenTelemetry and logging set-up: one call per process.

Traces: a TracerProvider whose resource names the service, exporting over OTLP/HTTP when an
endpoint is configured (the Collector in production, nothing in ``make run`` unless set).
Kafka spans come from FastStream's telemetry middleware (not the aiokafka instrumentation, which
would duplicate them); HTTP and MongoDB spans from their instrumentations. Logs are JSON lines
carrying ``trace_id`` and ``span_id`` so a log line leads to its trace.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_pymongo_instrumented = False
_logging_configured = False


def _add_trace_ids(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def mask_personal_data(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """No log line carries a phone or ID number whole (``shared.identity.mask_text``), nor a
    personal-data field of a logged document."""
    from shared.identity import mask_text, mask_tree

    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = mask_text(value)
        elif isinstance(value, dict | list):
            event[key] = mask_tree(value)[0]
    return event


def configure_logging(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_ids,
            structlog.processors.EventRenamer("message"),
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def setup_telemetry(
    service: str,
    *,
    otlp_endpoint: str | None = None,
    instance_id: str = "",
    extra_processors: list[SpanProcessor] | None = None,
    exporter: SpanExporter | None = None,
) -> TracerProvider:
    """A TracerProvider for ``service``; the first one in a process also becomes global."""
    global _pymongo_instrumented
    resource = Resource.create(
        {"service.name": service, "service.namespace": "jiandu", "service.instance.id": instance_id}
    )
    provider = TracerProvider(resource=resource)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in extra_processors or []:
        provider.add_span_processor(processor)
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    if not _pymongo_instrumented:
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        PymongoInstrumentor().instrument(tracer_provider=provider)
        _pymongo_instrumented = True
    return provider


@contextmanager
def producer_trace(
    tracer_provider: trace.TracerProvider | None, name: str, traceparent: object, tracestate: object
) -> Iterator[None]:
    """A span continuing the trace a CloudEvent's ``traceparent`` extension names.

    The distributed-tracing extension carries the producer's W3C trace context inside the
    event; what is emitted under this span (the outbox keeps the current context) continues
    that trace instead of the request's. Without a valid ``traceparent``, nothing changes.
    """
    if not isinstance(traceparent, str):
        yield
        return
    carrier = {"traceparent": traceparent}
    if isinstance(tracestate, str):
        carrier["tracestate"] = tracestate
    parent = TraceContextTextMapPropagator().extract(carrier)
    if not trace.get_current_span(parent).get_span_context().is_valid:
        yield
        return
    tracer = trace.get_tracer("jiandu.ingest", tracer_provider=tracer_provider)
    link = trace.Link(trace.get_current_span().get_span_context())  # the HTTP request's span
    with tracer.start_as_current_span(name, context=parent, links=[link]):
        yield
