"""Composition root of the gateway service: wires handlers, timers, indexes and routes."""

from __future__ import annotations

import structlog
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from services.gateway import handlers, storage
from services.gateway.auth import create_user
from services.gateway.context import GatewayService
from services.gateway.domain.access import Role
from services.gateway.routes import router
from services.gateway.settings import GatewaySettings
from shared.clock import Clock
from shared.service import Service
from shared.topics import (
    EXTERNAL_TYPE_TOPICS,
    INGEST_QUARANTINE,
    NOTIFY_REQUESTS,
    SUPERVISION_LEADS,
)

log = structlog.get_logger(__name__)


async def bootstrap_users(service: Service) -> None:
    """Create the users of ``JIANDU_BOOTSTRAP_USERS`` that do not exist yet."""
    settings = service.settings
    assert isinstance(settings, GatewaySettings)
    for item in filter(None, (s.strip() for s in settings.bootstrap_users.split(","))):
        parts = item.split(":")
        if len(parts) < 3:
            log.warning("bootstrap user ignored: want name:password:role[:district[:unit]]")
            continue
        name, password, role = parts[:3]
        district = parts[3] if len(parts) > 3 and parts[3] else None
        unit = parts[4] if len(parts) > 4 and parts[4] else None
        if await storage.find_user(service.db, name) is not None:
            continue
        try:
            await create_user(service.db, name, password, Role(role), district, unit)
        except DuplicateKeyError:
            pass  # another replica created it between our check and our insert
        except (ValueError, ValidationError) as exc:
            log.warning("bootstrap user ignored", user=name, error=str(exc))


async def start_feed(service: Service) -> None:
    """Fold an earlier version's per-event timeline into feed pages, then number on from the
    highest entry."""
    await storage.fold_legacy_timeline(service.db)
    await storage.init_seq(service.db)


def build(settings: GatewaySettings | None = None, clock: Clock | None = None) -> GatewayService:
    settings = settings or GatewaySettings()
    service = GatewayService(settings, clock=clock)
    service.indexes(storage.INDEXES, retired=storage.RETIRED_INDEXES)
    handlers.register(service)
    service.publishes(
        *set(EXTERNAL_TYPE_TOPICS.values()), INGEST_QUARANTINE, SUPERVISION_LEADS, NOTIFY_REQUESTS
    )
    service.on_start(bootstrap_users)
    service.on_start(start_feed)
    service.routes(lambda _: router)
    return service
