"""Composition root of the casereview service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.casereview.settings import CasereviewSettings
from shared.clock import Clock
from shared.service import Service


def build(settings: CasereviewSettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or CasereviewSettings()
    service = Service(settings, clock=clock)
    return service
