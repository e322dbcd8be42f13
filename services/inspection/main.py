"""Composition root of the inspection service: wires handlers, indexes and routes."""

from __future__ import annotations

from services.inspection import api, storage
from services.inspection.handlers import InspectionWorkflow, batch_reads
from services.inspection.settings import InspectionSettings
from shared.clock import Clock
from shared.service import Service
from shared.topics import INGEST_INSPECTIONS, INSPECTION_EVENTS, NOTIFY_REQUESTS, SUPERVISION_LEADS


def build(settings: InspectionSettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or InspectionSettings()
    service = Service(settings, clock=clock, title="Jiandu inspection (涉企行政检查监督)")
    workflow = InspectionWorkflow(settings)
    service.indexes(storage.INDEXES)
    service.consume(
        INGEST_INSPECTIONS,
        {
            "gov.enforcement.inspection.planned": workflow.on_planned,
            "gov.enforcement.inspection.conducted": workflow.on_conducted,
            "gov.enforcement.officer.certified": workflow.on_certified,
            "gov.enforcement.officer.suspended": workflow.on_suspended,
            "gov.enforcement.officer.revoked": workflow.on_revoked,
            "gov.enforcement.review.decided": workflow.on_review,
        },
        prefetch=batch_reads(settings.repeat_window_days),
    )
    service.publishes(INSPECTION_EVENTS, SUPERVISION_LEADS, NOTIFY_REQUESTS)
    service.routes(api.router)
    return service
