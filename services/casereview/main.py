"""Composition root of the casereview service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.casereview import api, storage
from services.casereview.handlers.campaigns import Campaigns
from services.casereview.handlers.intake import CASE_CLOSED, Intake, officer_ids
from services.casereview.handlers.rectification import RECTIFICATION_DUE, Rectifications
from services.casereview.handlers.scoring import Scoring
from services.casereview.reference import ReferenceData
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
    reference = ReferenceData.load(settings)
    intake = Intake(reference.policy)
    rectifications = Rectifications(settings.rectification_days)
    scoring = Scoring(reference, rectifications)
    campaigns = Campaigns(reference)
    service.indexes(storage.INDEXES)
    # Only closed case files: penalty decided/filed on the same topic belong to `penalty`.
    service.consume(
        INGEST_ENFORCEMENT,
        {CASE_CLOSED: intake.on_case_closed},
        prefetch={storage.CASES: data_key("case_id"), storage.OFFICERS: officer_ids},
    )
    # The officer registry is the inspection service's: casereview keeps a copy (持证 pre-check).
    service.consume(INSPECTION_EVENTS, {OFFICER_CHANGED_TYPE: intake.on_officer_changed})
    service.on_timer(
        RECTIFICATION_DUE,
        rectifications.on_rectification_due,
        prefetch={
            storage.RECTIFICATIONS: lambda timer: str(timer["payload"].get("rectification_id"))
        },
    )
    service.publishes(CASEREVIEW_EVENTS, NOTIFY_REQUESTS, SUPERVISION_LEADS, AUDIT_EVENTS)
    service.provide(reference, campaigns, scoring, rectifications)
    service.routes(api.router)
    return service
