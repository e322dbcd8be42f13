"""Composition root of the notify service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.notify import api, storage
from services.notify.channels import Transports
from services.notify.delivery import DeliveryWorker
from services.notify.domain.directory import load_directory
from services.notify.handlers import (
    ESCALATION_DUE,
    LETTER_REPLY_DUE,
    NotifyWorkflow,
    notice_of_request,
)
from services.notify.settings import NotifySettings
from shared.clock import Clock
from shared.contracts import NOTIFY_REQUEST_TYPE
from shared.service import Service
from shared.topics import AUDIT_EVENTS, NOTIFY_EVENTS, NOTIFY_REQUESTS, SUPERVISION_LEADS


def build(settings: NotifySettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or NotifySettings()
    service = Service(settings, clock=clock)
    workflow = NotifyWorkflow(settings, service.source, load_directory(settings.directory_path))
    worker = DeliveryWorker(settings, workflow, Transports(settings))
    service.indexes(storage.INDEXES)
    service.consume(
        NOTIFY_REQUESTS,
        {NOTIFY_REQUEST_TYPE: workflow.on_requested},
        prefetch={storage.NOTICES: notice_of_request},
    )
    service.on_timer(
        ESCALATION_DUE,
        workflow.on_escalation_due,
        prefetch={storage.NOTICES: lambda timer: timer["payload"]["notice_id"]},
    )
    service.on_timer(
        LETTER_REPLY_DUE,
        workflow.on_letter_reply_due,
        prefetch={
            storage.LETTERS: lambda timer: timer["payload"]["notice_id"],
            storage.NOTICES: lambda timer: timer["payload"]["notice_id"],
        },
    )
    service.on_start(worker.start)
    service.on_stop(worker.stop)
    service.publishes(NOTIFY_EVENTS, AUDIT_EVENTS, SUPERVISION_LEADS)
    service.provide(workflow, worker, workflow.directory)
    service.routes(api.router)
    return service
