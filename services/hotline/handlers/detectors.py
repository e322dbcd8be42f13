"""The detectors that raise 监督线索 from a complaint's history: 推诿 (bounced between units),
以属地为由推责 (a district matter pushed to a street), 高频投诉 (one place, many complaints),
and the 重复件 link (a repeated report joined to the first one).
"""

from __future__ import annotations

from services.hotline import storage
from services.hotline.domain import lifecycle
from services.hotline.domain.duplicates import (
    StreetCandidates,
    candidate,
    find_original,
    remember,
    street_key,
)
from services.hotline.domain.leads import (
    PlaceActivity,
    hotspot_id,
    is_bounce,
    is_hotspot,
    is_responsibility_shift,
    window_start,
)
from services.hotline.domain.lifecycle import Complaint
from services.hotline.domain.routing import Route
from services.hotline.handlers.steps import ACTOR, ComplaintSteps
from shared.contracts import LeadKind
from shared.unit_of_work import UnitOfWork


class LeadDetectors(ComplaintSteps):
    """Checks run after intake and after every hand-over; each lead is raised once."""

    async def _check_duplicate(self, uow: UnitOfWork, complaint: Complaint) -> None:
        """重复件 (row 12): link a repeated report to the first one, shown on both.

        The originals of the street are kept in one document per district, matter and
        street (prefetched with the places): no query over complaints per event.
        """
        if complaint.matter is None:
            return
        streets = storage.street_candidates(uow)
        state_id = hotspot_id(
            complaint.district,
            complaint.matter,
            street_key(complaint.street, complaint.street_text),
        )
        street = await streets.get(state_id) or StreetCandidates(id=state_id)
        new = candidate(
            complaint.id, complaint.received_at, complaint.address, complaint.description
        )
        match = find_original(new, street.candidates, self.duplicates)
        if match is None:
            street.candidates = remember(street.candidates, new, self.duplicates.window_days)
            streets.put(street)
            return
        detail = match.model_dump(exclude={"original"})
        received = complaint.received_at
        await self._step(
            uow,
            complaint,
            lifecycle.link_duplicate,
            original=match.original,
            by=ACTOR,
            at=received,
            detail=detail,
        )
        original = await storage.complaints(uow).get(match.original)
        if original is None:
            return
        noted = await self._step(
            uow, original, lifecycle.note_duplicate, duplicate=complaint.id, by=ACTOR, at=received
        )
        if noted is not None:
            await self._save(uow, original)

    async def _check_bounce(self, uow: UnitOfWork, complaint: Complaint) -> None:
        """推诿: returned or handed over too often (thresholds in the settings)."""
        if is_bounce(complaint.returns, complaint.handovers, self.bounce):
            await self._lead(
                uow,
                complaint,
                LeadKind.BOUNCE,
                (complaint.id,),
                f"工单 {complaint.id}（{complaint.matter_name or '事项不明'}）"
                f"被退单 {complaint.returns} 次、"
                f"在单位间流转 {complaint.handovers} 次，疑似推诿",
                {
                    "returns": complaint.returns,
                    "handovers": complaint.handovers,
                    "units": complaint.units_seen,
                },
            )

    async def _check_shift(
        self, uow: UnitOfWork, complaint: Complaint, target: Route, held_by: list[str]
    ) -> None:
        """以属地为由推责: judged from the routing catalogue, not from the return's wording."""
        if target.level != "street" or complaint.matter is None:
            return
        entry = await storage.get_entry(uow, complaint.district, complaint.matter)
        if entry is None or not is_responsibility_shift(
            matter_level=entry.level,
            owner=entry.unit,
            held_by=held_by,
            to_unit=target.unit,
            to_level=target.level,
            exceptions=entry.streets.values(),
        ):
            return
        returns = [
            step
            for step in complaint.timeline
            if step.verb == "returned" and step.unit == entry.unit
        ]
        await self._lead(
            uow,
            complaint,
            LeadKind.RESPONSIBILITY_SHIFT,
            (complaint.id, entry.unit),
            f"区级部门 {entry.unit} 的区级管辖事项「{complaint.matter_name}」"
            f"（工单 {complaint.id}）"
            f"在其{'退单' if returns else '经手'}后转由街镇 {target.unit} 办理",
            {
                "unit": entry.unit,
                "matter": complaint.matter,
                "to_unit": target.unit,
                "reasons": [step.reason for step in returns],
                "returns": complaint.returns,
                "catalogue_level": entry.level,
            },
            unit=entry.unit,
        )

    async def _check_hotspot(self, uow: UnitOfWork, complaint: Complaint) -> None:
        """高频投诉: at most one lead per complaint, and one per place within a window; a
        duplicate (重复件) is counted once, as its original."""
        if complaint.matter is None or complaint.duplicate_of is not None:
            return
        window = self.settings.hotspot_window_days
        since = window_start(complaint.received_at, window)
        activities = storage.place_activity(uow)
        raised = False
        for key in sorted(
            complaint.place_keys, key=lambda place_key: not place_key.startswith("target:")
        ):
            state_id = hotspot_id(complaint.district, complaint.matter, key)
            place = await activities.get(state_id) or PlaceActivity(id=state_id)
            place.record(complaint.id, complaint.received_at, window)
            activities.put(place)
            if raised or (place.last_at is not None and place.last_at >= since):
                continue  # one lead per complaint; this cluster was reported within the window
            ids = place.within(since, complaint.received_at)
            if not is_hotspot(len(ids), self.settings.hotspot_threshold):
                continue
            place.leads += 1
            place.last_at, place.complaints = complaint.received_at, ids
            activities.put(place)
            raised = True
            await self._lead(
                uow,
                complaint,
                LeadKind.HOTSPOT,
                (complaint.district, complaint.matter, key, str(place.leads)),
                f"{window:g} 天内同一地点/对象「{key.split(':', 1)[1]}」"
                f"收到 {len(ids)} 件「{complaint.matter_name}」投诉",
                {
                    "place": key,
                    "matter": complaint.matter,
                    "complaints": ids,
                    "window_days": window,
                },
            )
