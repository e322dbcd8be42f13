"""检查计划备案: a unit files (or revises) its inspection plan; the 未备案 rule reads them."""

from __future__ import annotations

from services.inspection import storage
from services.inspection.handlers.findings import Findings
from shared.clock import utc
from shared.contracts import InspectionPlanned, parse_data
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork


class PlanFiling(Findings):
    """Keeps the filed plans, one revision a change."""

    async def on_planned(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, InspectionPlanned)
        existing = await storage.get(uow, storage.PLANS, data.plan_id)
        if existing is not None and existing["unit"] != data.unit:
            raise EventRejected(
                f"plan {data.plan_id} was filed by {existing['unit']}, not {data.unit}"
            )
        doc: Document = {
            "_id": data.plan_id,
            "unit": data.unit,
            "district": data.district,
            "period_start": data.period_start.isoformat(),
            "period_end": data.period_end.isoformat(),
            "enterprises": sorted(set(data.enterprises)),
            "sectors": sorted(set(data.sectors)),
            "double_random": data.double_random,
            "filed_at": utc(data.filed_at),
        }
        if existing is not None and {k: existing.get(k) for k in doc} == doc:
            return  # the same plan again (new event id): nothing changes
        doc["revision"] = int(existing.get("revision", 0)) + 1 if existing else 1
        doc["status"] = "filed"
        doc["updated_at"] = uow.now()
        storage.put(uow, storage.PLANS, doc)
        await self._emit(uow, "plan", "filed", doc, {"at": uow.now(), "event_id": event.id})
