"""Events into the hotline: a new 12345 work order (register, classify, route, dispatch), a
unit's action the 12345 platform reports, and a closed enforcement case (for 应立尽立); with
the keys a batch of events prefetches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog

from services.hotline import storage
from services.hotline.domain.duplicates import street_key
from services.hotline.domain.leads import hotspot_id, place_keys, target_keys
from services.hotline.domain.lifecycle import (
    Complainant,
    Complaint,
    TimelineEntry,
    Verdict,
)
from services.hotline.domain.matters import classify
from services.hotline.domain.routing import find_street, route
from services.hotline.domain.sla import local, resolve_deadline
from services.hotline.handlers.commands import UnitCommands
from services.hotline.handlers.steps import ACTOR, Acting
from shared.api import Conflict
from shared.contracts import CaseClosed, WorkOrderCreated, WorkOrderUpdated, parse_data
from shared.envelope import Envelope, EventRejected
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

log = structlog.get_logger(__name__)

VERDICTS: frozenset[str] = frozenset(
    ("violation_confirmed", "rectified", "no_violation", "not_applicable")
)
"""The verdicts a ``resolved`` update may carry (anything else: none given)."""


def update_fingerprint(data: WorkOrderUpdated) -> str:
    """The same platform action re-sent under a new event id is recognised by this."""
    parts = [data.action, data.by_unit, local(data.at).isoformat()]
    if data.category:
        parts.append(data.category)
    return "|".join(parts)


def party_keys(name: str | None, party_id: str | None) -> list[str]:
    """A case party's keys: its name's target keys and its credit code (统一社会信用代码)."""
    return sorted(set(target_keys(name)) | ({f"uscc:{party_id.upper()}"} if party_id else set()))


class WorkOrderIntake(UnitCommands):
    """The consumers of ``ingest.hotline`` and ``ingest.enforcement``."""

    async def on_created(self, event: Envelope, uow: UnitOfWork) -> None:
        """Register, classify, route and dispatch a new work order (once per order_id)."""
        data = parse_data(event, WorkOrderCreated)
        if await storage.complaints(uow).get(data.order_id) is not None:
            log.info("duplicate work order ignored", order_id=data.order_id, event_id=event.id)
            return
        received = local(data.received_at).astimezone(dt.UTC)
        found = classify(self.matters, data.category, data.description)
        matter = self.matters.get(found.matter)
        entry = await storage.get_entry(uow, data.district, found.matter) if found.matter else None
        target = route(self.city, data.district, data.street, found.matter, entry)
        days = self._limit_days(data.kind, found.matter)
        complaint = Complaint(
            id=data.order_id,
            district=data.district,
            street=target.street,
            street_text=data.street,
            address=data.address,
            target=data.target,
            place_keys=place_keys(data.address, data.target),
            target_keys=target_keys(data.target),
            kind=data.kind,
            channel=data.channel,
            category=data.category,
            matter=found.matter,
            matter_name=matter.name if matter else None,
            classified_by=found.by,
            description=data.description,
            complainant=Complainant(name=data.complainant.name, phone=data.complainant.phone),
            received_at=received,
            due=resolve_deadline(received, days),
            limit_days=days,
            created_at=uow.now(),
        )
        registered = complaint.record(
            TimelineEntry(
                verb="registered",
                at=received,
                by=self.settings.platform_unit,
                detail={
                    "channel": data.channel,
                    "classification": found.model_dump(),
                    "due": complaint.due,
                    "limit_days": days,
                },
            )
        )
        await self._emit(uow, complaint, registered)
        await self._dispatch(uow, complaint, target, by=ACTOR, at=received)
        await self._arm_deadline(uow, complaint)
        await self._check_duplicate(uow, complaint)
        await self._save(uow, complaint)  # stored first: the hotspot count includes this one
        await self._check_hotspot(uow, complaint)
        await self._save(uow, complaint)

    async def on_updated(self, event: Envelope, uow: UnitOfWork) -> None:
        """A unit's action reported by 12345; the platform is authoritative about who acts."""
        data = parse_data(event, WorkOrderUpdated)
        complaint = await storage.complaints(uow).get(data.order_id)
        if complaint is None:
            raise EventRejected(f"work order {data.order_id} is unknown (no created event)")
        fingerprint = update_fingerprint(data)
        if fingerprint in complaint.applied_updates:
            return  # the same action re-sent: nothing changes
        at = local(data.at).astimezone(dt.UTC)
        try:
            await self._apply_update(uow, complaint, data, at)
        except Conflict as exc:
            raise EventRejected(f"{data.order_id} {data.action} by {data.by_unit}: {exc}") from exc
        complaint.applied_updates.append(fingerprint)
        await self._save(uow, complaint)

    async def _apply_update(
        self, uow: UnitOfWork, complaint: Complaint, data: WorkOrderUpdated, at: dt.datetime
    ) -> None:
        """One platform action as the unit's command; 12345 may have re-dispatched the order
        to the acting unit (a hand-over first) or skipped its 签收 (acknowledged for it)."""
        unit, platform = data.by_unit, self.settings.platform_unit
        acting = Acting(unit=unit, by=unit, at=at)
        if data.action == "rated":
            await self.rate(uow, complaint, platform, at, data.satisfaction or 0)
            return
        if data.action == "reclassified":
            await self.reclassify(uow, complaint, data.category or "", platform, at)
            return
        if complaint.is_open and complaint.unit != unit:
            # 12345 re-dispatched it to the unit now acting: a hand-over.
            await self.hand_over(uow, complaint, unit, "12345平台改派", by=platform, at=at)
        if data.action in ("extended", "resolved") and complaint.status == "dispatched":
            skipped = Acting(unit=unit, by=platform, at=at)  # the platform skipped 签收
            await self.acknowledge(uow, complaint, skipped)
        if data.action == "acknowledged":
            await self.acknowledge(uow, complaint, acting)
        elif data.action == "returned":
            await self.return_order(uow, complaint, acting, data.reason or "")
        elif data.action == "extended":
            days = data.extension_days or self.settings.default_extension_days
            await self.request_extension(uow, complaint, acting, days, data.reason or "延期")
            approving = Acting(unit=platform, by=platform, at=at)
            note = "12345平台同意延期"
            await self.decide_extension(uow, complaint, approving, True, note, deciders=(platform,))
        elif data.action == "resolved":
            raw = (data.model_extra or {}).get("verdict")
            verdict: Verdict | None = raw if raw in VERDICTS else None  # type: ignore[assignment]
            await self.resolve(uow, complaint, acting, data.outcome or "", verdict)

    async def on_case_closed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Remember the case's party, so 应立尽立 checks find it; link waiting complaints."""
        data = parse_data(event, CaseClosed)
        keys = party_keys(data.party.name, data.party.id)
        filed = data.dates.filed
        opened = (
            dt.datetime.combine(filed, dt.time(0), CST).astimezone(dt.UTC)
            if filed is not None
            else uow.now()
        )
        new = await storage.record_case(
            uow,
            {
                "_id": data.case_id,
                "unit": data.unit,
                "district": data.district,
                "source_order_id": data.source_order_id,
                "target_keys": keys,
                "opened_at": min(opened, uow.now()),
                "seen_at": uow.now(),
            },
        )
        if not new:
            return
        for complaint in await storage.complaints_for_case(
            uow, source_order_id=data.source_order_id, keys=keys
        ):
            if data.case_id not in complaint.case_ids:
                complaint.case_ids.append(data.case_id)
                await self._save(uow, complaint)

    # -- what a batch will read (prefetched with one query per collection) -------------

    def _classified(self, event: Envelope) -> tuple[dict[str, Any], str] | None:
        """A new work order's data and matter, classified as :meth:`on_created` will."""
        data = event.data
        if event.type != "gov.12345.workorder.created" or not isinstance(data, dict):
            return None
        description = data.get("description")
        category = data.get("category")
        found = classify(
            self.matters,
            category if isinstance(category, str) else None,
            description if isinstance(description, str) else "",
        )
        district = data.get("district")
        if found.matter is None or not isinstance(district, str):
            return None
        return data, found.matter

    def case_party_keys(self, event: Envelope) -> list[str]:
        """The keys a closed case's party is known by (complaints naming it are loaded)."""
        data = event.data if isinstance(event.data, dict) else {}
        party = data.get("party")
        if not isinstance(party, dict) or not isinstance(party.get("name"), str):
            return []
        party_id = party.get("id")
        return party_keys(party["name"], party_id if isinstance(party_id, str) else None)

    def routing_key(self, event: Envelope) -> str | None:
        """The routing catalogue entry a new work order will be routed by."""
        classified = self._classified(event)
        return storage.entry_id(classified[0]["district"], classified[1]) if classified else None

    def place_keys_of(self, event: Envelope) -> list[str]:
        """The 高频投诉 states a new work order will count in."""
        classified = self._classified(event)
        if classified is None:
            return []
        data, matter = classified
        address, target = data.get("address"), data.get("target")
        if not isinstance(address, str):
            return []
        places = place_keys(address, target if isinstance(target, str) else None)
        district = self.city.district(data["district"])
        street_text = data.get("street") if isinstance(data.get("street"), str) else None
        street = find_street(district, street_text) if district is not None else None
        places.append(street_key(street.id if street else None, street_text))
        return [hotspot_id(data["district"], matter, key) for key in places]
