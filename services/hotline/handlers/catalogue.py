"""The routing catalogue (派单目录): seeded once from the packaged file, then edited by the
district bureaus over the API; new work orders follow an edit at once.
"""

from __future__ import annotations

import datetime as dt

import structlog
from pydantic import ValidationError

from services.hotline import storage
from services.hotline.domain.routing import Level, RoutingEntry, load_routing, validate_entry
from services.hotline.handlers.steps import ComplaintSteps
from shared.api import Invalid, NotFound
from shared.mongo import Document
from shared.service import Service
from shared.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


class RoutingCatalogueEditor(ComplaintSteps):
    """Seeding and editing the catalogue's entries (one per district and matter)."""

    async def seed(self, svc: Service) -> None:
        """Seed the routing catalogue once (entries edited over the API are kept)."""
        catalogue = load_routing(self.settings.routing_path)
        added = await storage.seed_routing(svc.db, catalogue.entries, catalogue.version)
        if added:
            log.info("routing catalogue seeded", entries=added, version=catalogue.version)

    async def update_routing(
        self,
        uow: UnitOfWork,
        district: str,
        matter: str,
        *,
        level: Level,
        unit: str,
        streets: dict[str, str],
        by: str,
        at: dt.datetime,
    ) -> Document:
        """Change who handles a matter in a district: a known matter (404), an entry the
        city's units and streets fit (422), stored with a new version."""
        if self.matters.get(matter) is None:
            raise NotFound(f"unknown matter {matter}")
        try:
            entry = RoutingEntry(
                district=district, matter=matter, level=level, unit=unit, streets=streets
            )
        except ValidationError as exc:
            raise Invalid(str(exc)) from exc
        problems = validate_entry(self.city, entry)
        if problems:
            raise Invalid("; ".join(problems))
        return await storage.put_entry(uow, entry, by=by, at=at)
