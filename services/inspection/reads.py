"""The inspection read side: lists and items in the caller's scope (all of it needs
``READ_INSPECTIONS``) and the district summary. Routes are in ``api``; the read models in
``schemas``."""

from __future__ import annotations

import datetime as dt

from services.inspection import storage
from services.inspection.schemas import DistrictSummary, EnterpriseFrequency
from services.inspection.settings import InspectionSettings
from shared.api import ScopedCollection
from shared.identity import Caller, Permission, district_in_scope
from shared.service import Service

READ = Permission.READ_INSPECTIONS
INSPECTIONS = ScopedCollection(storage.INSPECTIONS, "inspection", storage.INSPECTIONS_ORDER, READ)
PLANS = ScopedCollection(storage.PLANS, "plan", storage.PLANS_ORDER, READ)
OFFICERS = ScopedCollection(storage.OFFICERS, "officer", storage.OFFICERS_ORDER, READ)
REVIEWS = ScopedCollection(storage.REVIEWS, "review", storage.REVIEWS_ORDER, READ)
RATES = ScopedCollection(storage.RATES, "rate", storage.RATES_ORDER, READ)
FLAGS = ScopedCollection(storage.FLAGS, "flag", storage.FLAGS_ORDER, READ)


async def district_summary(
    svc: Service, caller: Caller, district: str, days: int | None, top: int
) -> DistrictSummary:
    """The district's inspections of the trailing ``days`` (default: the repeat window):
    亮码率, 未备案, 无证 and the most inspected enterprises (a joint visit counted once)."""
    caller.require(READ)
    district_in_scope(caller, district)
    settings = svc.settings
    assert isinstance(settings, InspectionSettings)
    since = svc.clock.now() - dt.timedelta(days=days or settings.repeat_window_days)
    totals, enterprises = await storage.district_summary(svc.db, district, since, top)
    inspections = int(totals.get("inspections", 0))
    scanned = int(totals.get("code_scanned", 0))
    return DistrictSummary(
        district=district,
        since=since,
        inspections=inspections,
        code_scanned=scanned,
        code_rate=scanned / inspections if inspections else None,
        unplanned=int(totals.get("unplanned", 0)),
        uncertified=int(totals.get("uncertified", 0)),
        enterprises=[EnterpriseFrequency(**e) for e in enterprises],
    )
