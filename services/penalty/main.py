"""Composition root of the penalty service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

import structlog

from services.penalty import api, storage
from services.penalty.handlers import FILING_DUE, REPLY_DUE, PenaltyWorkflow
from services.penalty.settings import PenaltySettings
from shared.clock import Clock
from shared.consumer import data_key
from shared.mongo import Document
from shared.service import Service
from shared.topics import (
    AUDIT_EVENTS,
    INGEST_ENFORCEMENT,
    NOTIFY_REQUESTS,
    PENALTY_EVENTS,
    SUPERVISION_LEADS,
)

log = structlog.get_logger(__name__)


def missing_filing_flag(timer: Document) -> str | None:
    """The finding a due filing timer may record."""
    case_id = timer["payload"].get("case_id")
    return f"missing_filing:{case_id}" if isinstance(case_id, str) else None


async def build_fine_totals(service: Service) -> None:
    """An older database (decided filings, no fine totals): build them once, before any
    event is consumed, so the upgrade changes no judgement."""
    built = await storage.build_fine_totals(service.db)
    if built:
        log.info("fine totals built from the decided filings", documents=built)


def build(settings: PenaltySettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or PenaltySettings()
    service = Service(settings, clock=clock)
    workflow = PenaltyWorkflow(settings)
    service.indexes(storage.INDEXES, retired=storage.RETIRED)
    service.consume(
        INGEST_ENFORCEMENT,
        {
            "gov.enforcement.penalty.decided": workflow.on_decided,
            "gov.enforcement.penalty.filed": workflow.on_filed,
        },
        prefetch={
            storage.FILINGS: data_key("case_id"),
            storage.FINE_TOTALS: workflow.totals_of,
            storage.ANOMALIES: workflow.anomaly_of,
            storage.FLAGS: workflow.flags_of,
        },
    )
    service.on_timer(
        FILING_DUE,
        workflow.on_filing_due,
        prefetch={
            storage.FILINGS: lambda timer: timer["payload"].get("case_id"),
            storage.FLAGS: missing_filing_flag,
        },
    )
    service.on_timer(
        REPLY_DUE,
        workflow.on_reply_due,
        prefetch={storage.LETTERS: lambda timer: timer["payload"].get("letter_id")},
    )
    service.publishes(PENALTY_EVENTS, SUPERVISION_LEADS, NOTIFY_REQUESTS, AUDIT_EVENTS)
    service.on_start(build_fine_totals)
    service.provide(workflow, workflow.catalogue)
    service.routes(api.router)
    return service
