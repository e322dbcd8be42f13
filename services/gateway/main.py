"""Composition root of the gateway service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

from services.gateway.settings import GatewaySettings
from shared.clock import Clock
from shared.service import Service


def build(settings: GatewaySettings | None = None, clock: Clock | None = None) -> Service:
    settings = settings or GatewaySettings()
    service = Service(settings, clock=clock)
    return service
