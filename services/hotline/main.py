"""Composition root of the hotline service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.hotline.settings import HotlineSettings
from shared.clock import Clock
from shared.service import Service


def build(settings: HotlineSettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or HotlineSettings()
    service = Service(settings, clock=clock)
    return service
