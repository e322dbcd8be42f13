"""Composition root of the casereview service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.casereview import storage
from services.casereview.api import build_router
from services.casereview.handlers import CASE_CLOSED, RECTIFICATION_DUE, CaseReviewWorkflow
from services.casereview.settings import CasereviewSettings
from shared.clock import Clock
from shared.consumer import data_key
from shared.contracts import OFFICER_CHANGED_TYPE
from shared.service import Service
from shared.topics import (
    AUDIT_EVENTS,
    CASEREVIEW_EVENTS,
    INGEST_ENFORCEMENT,
    INSPECTION_EVENTS,
    NOTIFY_REQUESTS,
    SUPERVISION_LEADS,
)


def build(settings: CasereviewSettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or CasereviewSettings()
    service = Service(settings, clock=clock)
    workflow = CaseReviewWorkflow(settings)
    service.indexes(storage.INDEXES)
    # Only closed case files: penalty decided/filed on the same topic belong to `penalty`.
    service.consume(
        INGEST_ENFORCEMENT,
        {CASE_CLOSED: workflow.on_case_closed},
        prefetch={storage.CASES: data_key("case_id")},
    )
    # The officer registry is the inspection service's: casereview keeps a copy (持证 pre-check).
    service.consume(INSPECTION_EVENTS, {OFFICER_CHANGED_TYPE: workflow.on_officer_changed})
    service.on_timer(
        RECTIFICATION_DUE,
        workflow.on_rectification_due,
        prefetch={
            storage.RECTIFICATIONS: lambda timer: str(timer["payload"].get("rectification_id"))
        },
    )
    service.publishes(CASEREVIEW_EVENTS, NOTIFY_REQUESTS, SUPERVISION_LEADS, AUDIT_EVENTS)
    service.routes(lambda svc: build_router(svc, workflow))
    return service
