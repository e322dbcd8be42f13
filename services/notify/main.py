"""Composition root of the notify service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.notify.settings import NotifySettings
from shared.clock import Clock
from shared.service import Service


def build(settings: NotifySettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or NotifySettings()
    service = Service(settings, clock=clock)
    return service
