"""Composition root of the penalty service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.penalty import api, storage
from services.penalty.handlers import FILING_DUE, REPLY_DUE, PenaltyWorkflow
from services.penalty.settings import PenaltySettings
from shared.clock import Clock
from shared.consumer import data_key
from shared.service import Service
from shared.topics import (
    AUDIT_EVENTS,
    INGEST_ENFORCEMENT,
    NOTIFY_REQUESTS,
    PENALTY_EVENTS,
    SUPERVISION_LEADS,
)


def build(settings: PenaltySettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or PenaltySettings()
    service = Service(settings, clock=clock)
    workflow = PenaltyWorkflow(settings)
    service.indexes(storage.INDEXES)
    service.consume(
        INGEST_ENFORCEMENT,
        {
            "gov.enforcement.penalty.decided": workflow.on_decided,
            "gov.enforcement.penalty.filed": workflow.on_filed,
        },
        prefetch={storage.FILINGS: data_key("case_id")},
    )
    service.on_timer(
        FILING_DUE,
        workflow.on_filing_due,
        prefetch={storage.FILINGS: lambda timer: timer["payload"].get("case_id")},
    )
    service.on_timer(
        REPLY_DUE,
        workflow.on_reply_due,
        prefetch={storage.LETTERS: lambda timer: timer["payload"].get("letter_id")},
    )
    service.publishes(PENALTY_EVENTS, SUPERVISION_LEADS, NOTIFY_REQUESTS, AUDIT_EVENTS)
    service.provide(workflow, workflow.catalogue)
    service.routes(api.router)
    return service
