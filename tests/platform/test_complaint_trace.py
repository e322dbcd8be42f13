"""One trace per complaint (MISSION row 27): gateway → hotline → notify, timers included.

A 12345 work order arrives at the gateway with the platform's W3C trace context; the
hotline's events, the durable 签收 timer it arms, the reminder that timer emits when it fires
and the notify service consuming that reminder all belong to that one trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.gateway.main import build as build_gateway
from services.gateway.settings import GatewaySettings
from services.hotline.main import build as build_hotline
from services.hotline.settings import HotlineSettings
from services.notify.main import build as build_notify
from services.notify.settings import NotifySettings
from shared.clock import ManualClock
from shared.service import Service
from shared.timers import TIMERS
from shared.topics import HOTLINE_EVENTS, NOTIFY_REQUESTS
from shared.workcalendar import CST
from tests.gateway.support import make_api_key, workorder
from tests.helpers import KafkaTap, eventually

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
RECEIVED = dt.datetime(2025, 3, 3, 9, 0, tzinfo=CST)  # a Monday; 签收 due at 11:00


def trace_of(record: Any) -> str:
    return str(dict(record.headers)["traceparent"].decode().split("-")[1])


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


async def test_a_complaint_and_its_fired_timer_stay_in_the_work_orders_trace(
    settings_for: Callable[..., Any], tap: Any
) -> None:
    exporter = InMemorySpanExporter()
    clock = ManualClock(RECEIVED)
    gateway: Service = build_gateway(settings_for(GatewaySettings))
    hotline: Service = build_hotline(settings_for(HotlineSettings), clock=clock)
    notify: Service = build_notify(settings_for(NotifySettings))
    for svc in (gateway, hotline, notify):
        svc.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    events: KafkaTap = await tap(hotline.topic(HOTLINE_EVENTS))
    requests: KafkaTap = await tap(hotline.topic(NOTIFY_REQUESTS))
    notify_process = f"{notify.topic(NOTIFY_REQUESTS)} process"

    async def notify_consumed() -> list[ReadableSpan]:
        """The notify consumer's span per event (FastStream's batch span starts its own)."""
        return [
            s
            for s in exporter.get_finished_spans()
            if s.name == notify_process
            and s.instrumentation_scope is not None
            and s.instrumentation_scope.name == "jiandu.consumer"
        ]

    async with gateway.running(), hotline.running(), notify.running():
        _, key = await make_api_key(gateway)
        event = workorder("WO-T1", received_at=RECEIVED.isoformat())
        event["traceparent"] = TRACEPARENT  # the 12345 platform's trace (CloudEvents extension)
        transport = httpx.ASGITransport(app=gateway.http_app(manage_lifecycle=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            accepted = await client.post(
                "/v1/events",
                json=event,
                headers={"Content-Type": "application/cloudevents+json", "X-Api-Key": key},
            )
        assert accepted.status_code == 202, accepted.text
        await events.wait_for(lambda rs: len(rs) >= 2)  # registered, routed
        timer = await hotline.db[TIMERS].find_one({"kind": "hotline.ack_due"})
        assert hotline.timers is not None
        clock.set(dt.datetime(2025, 3, 3, 11, 30, tzinfo=CST))  # 签收 overdue
        assert await hotline.timers.tick() == 1
        reminders = await requests.wait_for(lambda rs: len(rs) >= 1)
        consumed = await eventually(notify_consumed)

    assert [trace_of(r) for r in events.records] == [TRACE_ID, TRACE_ID]
    assert timer is not None and timer["trace"]["traceparent"].split("-")[1] == TRACE_ID
    assert [trace_of(r) for r in reminders] == [TRACE_ID], "the timer's reminder continues it"
    fired = [s for s in exporter.get_finished_spans() if s.name == "timer hotline.ack_due"]
    assert len(fired) == 1 and trace_id(fired[0]) == TRACE_ID
    assert fired[0].attributes is not None
    assert fired[0].attributes["jiandu.timer.subject"] == "complaint/WO-T1"
    assert {trace_id(s) for s in consumed} == {TRACE_ID}, "notify consumes it in that trace"
