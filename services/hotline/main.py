"""Composition root of the hotline service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.hotline import api, storage
from services.hotline.handlers import ACK_DUE, CASE_CHECK, ESCALATE, RESOLVE_DUE, HotlineWorkflow
from services.hotline.settings import HotlineSettings
from shared.clock import Clock
from shared.consumer import data_key
from shared.service import Service
from shared.timers import TimerKeyOf
from shared.topics import (
    AUDIT_EVENTS,
    HOTLINE_EVENTS,
    INGEST_ENFORCEMENT,
    INGEST_HOTLINE,
    NOTIFY_REQUESTS,
    SUPERVISION_LEADS,
)
from shared.unit_of_work import Lookup


def build(settings: HotlineSettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or HotlineSettings()
    service = Service(settings, clock=clock)
    workflow = HotlineWorkflow(settings)
    service.indexes(storage.INDEXES)
    service.on_start(workflow.seed)
    service.consume(
        INGEST_HOTLINE,
        {
            "gov.12345.workorder.created": workflow.on_created,
            "gov.12345.workorder.updated": workflow.on_updated,
        },
        prefetch={
            storage.COMPLAINTS: data_key("order_id"),
            storage.ROUTING: workflow.routing_key,
            storage.HOTSPOTS: workflow.place_keys_of,
        },
    )
    service.consume(
        INGEST_ENFORCEMENT,
        {"gov.enforcement.case.closed": workflow.on_case_closed},
        prefetch={
            storage.CASES: data_key("case_id"),
            storage.COMPLAINTS: data_key("source_order_id"),
            storage.COMPLAINTS_BY_TARGET: workflow.case_party_keys,
        },
    )
    # every hotline timer names its complaint: a batch of timers loads them with one query
    complaint_of: dict[str | Lookup, TimerKeyOf] = {
        storage.COMPLAINTS: lambda timer: timer["payload"]["order_id"]
    }
    for kind, handler in (
        (ACK_DUE, workflow.on_ack_due),
        (RESOLVE_DUE, workflow.on_resolve_due),
        (ESCALATE, workflow.on_escalate),
    ):
        service.on_timer(kind, handler, prefetch=complaint_of)
    service.on_timer(
        CASE_CHECK,
        workflow.on_case_check,
        prefetch={
            **complaint_of,
            storage.CASES_BY_ORDER: lambda timer: timer["payload"]["order_id"],
            storage.CASES_BY_TARGET: lambda timer: timer["payload"].get("target_keys"),
        },
    )
    service.publishes(HOTLINE_EVENTS, SUPERVISION_LEADS, NOTIFY_REQUESTS, AUDIT_EVENTS)
    service.provide(workflow)
    service.routes(api.router)
    return service
