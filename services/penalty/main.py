"""Composition root of the penalty service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.penalty.settings import PenaltySettings
from shared.clock import Clock
from shared.service import Service


def build(settings: PenaltySettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or PenaltySettings()
    service = Service(settings, clock=clock)
    return service
