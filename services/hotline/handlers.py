"""Event, timer and command handlers of the hotline service: glue between events, the domain
rules and storage. Every change runs inside one unit of work (transaction); timer, lead and
notice ids derive from business keys (order id, dispatch number, deadline), so a retry or a
redelivery never doubles anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from pydantic_core import to_jsonable_python

from services.hotline import storage
from services.hotline.domain import lifecycle
from services.hotline.domain.duplicates import (
    DuplicateThresholds,
    StreetCandidates,
    candidate,
    find_original,
    remember,
    street_key,
)
from services.hotline.domain.leads import (
    BounceThresholds,
    PlaceActivity,
    case_check_due,
    confirms_violation,
    hotspot_id,
    is_bounce,
    is_case_not_opened,
    is_hotspot,
    is_responsibility_shift,
    place_keys,
    target_keys,
    window_start,
)
from services.hotline.domain.lifecycle import Complaint, TimelineEntry, TransitionRefused, Verdict
from services.hotline.domain.matters import MatterTable, cached_matters, classify
from services.hotline.domain.routing import (
    Route,
    find_street,
    level_of,
    load_routing,
    redispatch_after_return,
    route,
    triage_unit,
)
from services.hotline.domain.sla import (
    ack_deadline,
    escalation_due,
    extend_deadline,
    local,
    resolve_deadline,
    resolve_limit_days,
    working_days_overdue,
)
from services.hotline.settings import HotlineSettings
from shared.api import Conflict, NotFound
from shared.city import CITY_BUREAU, City, load_city, supervising_unit
from shared.contracts import (
    CaseClosed,
    LeadKind,
    NoticeKind,
    NotificationRequest,
    SupervisionLead,
    WorkOrderCreated,
    WorkOrderUpdated,
    parse_data,
)
from shared.envelope import Envelope, EventRejected
from shared.service import Service
from shared.topics import HOTLINE_EVENTS
from shared.unit_of_work import UnitOfWork
from shared.workcalendar import CST

log = structlog.get_logger(__name__)
T = TypeVar("T")

EVENT_PREFIX = "jiandu.hotline.complaint."
ACTOR = "hotline"
"""The service itself: who takes the automatic steps and raises leads and notices."""
ACK_DUE = "hotline.ack_due"
RESOLVE_DUE = "hotline.resolve_due"
ESCALATE = "hotline.escalate"
CASE_CHECK = "hotline.case_check"
SNAPSHOT_DESCRIPTION_CHARS = 1000


def timer_id(kind: str, order_id: str, *parts: object) -> str:
    """One timer per deadline (dispatch number, due instant): re-arming never re-fires one."""
    return ":".join(("hotline", kind, order_id, *(str(p) for p in parts)))


def ack_timer(c: Complaint) -> str:
    return timer_id("ack", c.id, c.dispatch_seq)


def due_timer(c: Complaint, due: dt.datetime | None = None) -> str:
    when = due or c.due
    return timer_id("due", c.id, int(when.timestamp()) if when else "none")


def escalate_timer(c: Complaint, due: dt.datetime | None = None) -> str:
    when = due or c.due
    return timer_id("escalate", c.id, int(when.timestamp()) if when else "none")


def snapshot(c: Complaint) -> dict[str, Any]:
    """The complaint as events carry it: no timeline (events are the timeline), a bounded
    description; the complainant travels (readers mask it by role, docs/events.md)."""
    body = c.model_dump(exclude={"timeline", "applied_updates"})
    body["description"] = c.description[:SNAPSHOT_DESCRIPTION_CHARS]
    return to_jsonable_python(body)  # type: ignore[no-any-return]


def update_fingerprint(data: WorkOrderUpdated) -> str:
    """The same platform action re-sent under a new event id is recognised by this."""
    parts = [data.action, data.by_unit, local(data.at).isoformat()]
    if data.category:
        parts.append(data.category)
    return "|".join(parts)


class HotlineWorkflow:
    """The 12345 complaint process for one service instance (stateless between calls)."""

    def __init__(self, settings: HotlineSettings) -> None:
        self.settings = settings
        self.city: City = load_city()
        self.matters: MatterTable = cached_matters(settings.matters_path)
        self.bounce = BounceThresholds(
            returns=settings.bounce_returns, handovers=settings.bounce_handovers
        )
        self.duplicates = DuplicateThresholds(
            window_days=settings.duplicate_window_days,
            address_similarity=settings.duplicate_address_similarity,
            text_similarity=settings.duplicate_text_similarity,
        )

    # ------------------------------------------------------------------ plumbing

    async def seed(self, svc: Service) -> None:
        """Seed the routing catalogue once (entries edited over the API are kept)."""
        catalogue = load_routing(self.settings.routing_path)
        added = await storage.seed_routing(svc.db, catalogue.entries, catalogue.version)
        if added:
            log.info("routing catalogue seeded", entries=added, version=catalogue.version)

    async def _emit(self, uow: UnitOfWork, c: Complaint, entry: TimelineEntry) -> None:
        change = {"by": entry.by, "at": entry.at, "unit": entry.unit, "reason": entry.reason}
        change.update(entry.detail)
        await uow.emit_change(
            HOTLINE_EVENTS,
            EVENT_PREFIX + entry.verb,
            "complaint",
            c.id,
            c.district,
            snapshot(c),
            change,
        )

    async def _load(self, uow: UnitOfWork, order_id: str) -> Complaint:
        c = await storage.complaints(uow).get(order_id)
        if c is None:
            raise NotFound(f"no complaint {order_id}")
        return c

    async def _save(self, uow: UnitOfWork, c: Complaint) -> None:
        c.updated_at = uow.now()
        storage.complaints(uow).put(c)

    async def _lead(
        self,
        uow: UnitOfWork,
        c: Complaint,
        kind: LeadKind,
        parts: tuple[str, ...],
        summary: str,
        evidence: dict[str, Any],
        unit: str | None = None,
    ) -> bool:
        """Raise a 监督线索 once: its id comes from the finding, and the complaint keeps it."""
        lead_id = SupervisionLead.make_id(kind, *parts)
        if lead_id in c.leads:
            return False
        c.leads.append(lead_id)
        await uow.raise_lead(
            SupervisionLead(
                lead_id=lead_id,
                kind=kind,
                district=c.district,
                unit=unit or c.unit,
                subject_type="complaint",
                subject_id=c.id,
                summary=summary[:2000],
                evidence=to_jsonable_python(evidence),
                raised_at=uow.now(),
                raised_by=ACTOR,
            )
        )
        return True

    async def _notice(
        self,
        uow: UnitOfWork,
        c: Complaint,
        kind: NoticeKind,
        key: str,
        summary: str,
        deadline: dt.datetime | None,
        context: dict[str, Any],
    ) -> None:
        await uow.request_notice(
            NotificationRequest(
                idempotency_key=key,
                kind=kind,
                recipient_unit=c.unit or triage_unit(self.city, c.district),
                district=c.district,
                subject_type="complaint",
                subject_id=c.id,
                summary=summary,
                deadline=deadline,
                context=to_jsonable_python(context),
                requested_by=ACTOR,
            )
        )

    @staticmethod
    def _refuse(exc: TransitionRefused) -> Conflict:
        return Conflict(str(exc))

    # ------------------------------------------------------------------ intake

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
        days = resolve_limit_days(
            data.kind, self.settings.resolve_days, matter.resolve_days if matter else {}
        )
        c = Complaint(
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
            complainant=lifecycle.Complainant(
                name=data.complainant.name, phone=data.complainant.phone
            ),
            received_at=received,
            due=resolve_deadline(received, days),
            limit_days=days,
            created_at=uow.now(),
        )
        registered = c.record(
            TimelineEntry(
                verb="registered",
                at=received,
                by=self.settings.platform_unit,
                detail={
                    "channel": data.channel,
                    "classification": found.model_dump(),
                    "due": c.due,
                    "limit_days": days,
                },
            )
        )
        await self._emit(uow, c, registered)
        await self._dispatch(uow, c, target, by=ACTOR, at=received)
        await self._arm_deadline(uow, c)
        await self._check_duplicate(uow, c)
        await self._save(uow, c)  # stored first: the hotspot count includes this complaint
        await self._check_hotspot(uow, c)
        await self._save(uow, c)

    async def _check_duplicate(self, uow: UnitOfWork, c: Complaint) -> None:
        """重复件 (row 12): link a repeated report to the first one, shown on both.

        The originals of the street are kept in one document per district, matter and
        street (prefetched with the places): no query over complaints per event.
        """
        if c.matter is None:
            return
        streets = storage.street_candidates(uow)
        state_id = hotspot_id(c.district, c.matter, street_key(c.street, c.street_text))
        street = await streets.get(state_id) or StreetCandidates(id=state_id)
        new = candidate(c.id, c.received_at, c.address, c.description)
        match = find_original(new, street.candidates, self.duplicates)
        if match is None:
            street.candidates = remember(street.candidates, new, self.duplicates.window_days)
            streets.put(street)
            return
        detail = match.model_dump(exclude={"original"})
        linked = self._apply(
            lambda: lifecycle.link_duplicate(
                c, original=match.original, by=ACTOR, at=c.received_at, detail=detail
            )
        )
        await self._emit(uow, c, linked)
        original = await storage.complaints(uow).get(match.original)
        if original is None:
            return
        noted = lifecycle.note_duplicate(original, duplicate=c.id, by=ACTOR, at=c.received_at)
        if noted is not None:
            await self._emit(uow, original, noted)
            await self._save(uow, original)

    async def _arm_deadline(self, uow: UnitOfWork, c: Complaint) -> None:
        """The 办结 timer for the current deadline (or, already overdue, the 通报 one)."""
        if c.due is None:
            return
        if c.overdue:
            await uow.schedule(
                escalate_timer(c),
                ESCALATE,
                escalation_due(c.due, self.settings.escalate_after_days),
                {"order_id": c.id},
                subject=f"complaint/{c.id}",
            )
        else:
            await uow.schedule(
                due_timer(c), RESOLVE_DUE, c.due, {"order_id": c.id}, subject=f"complaint/{c.id}"
            )

    async def _disarm_deadline(
        self, uow: UnitOfWork, c: Complaint, due: dt.datetime | None
    ) -> None:
        await uow.cancel(due_timer(c, due))
        await uow.cancel(escalate_timer(c, due))

    async def _dispatch(
        self,
        uow: UnitOfWork,
        c: Complaint,
        target: Route,
        *,
        by: str,
        at: dt.datetime,
        handover: bool = True,
    ) -> None:
        held_by = list(c.units_seen)
        if c.dispatch_seq:
            await uow.cancel(ack_timer(c))  # the previous holder's 签收 clock stops
        try:
            entry = lifecycle.dispatch(
                c,
                target,
                by=by,
                at=at,
                ack_due=ack_deadline(at, self.settings.ack_hours),
                handover=handover,
            )
        except TransitionRefused as exc:
            raise self._refuse(exc) from exc
        await self._emit(uow, c, entry)
        await uow.schedule(
            ack_timer(c),
            ACK_DUE,
            c.ack_due,  # type: ignore[arg-type]
            {"order_id": c.id, "dispatch_seq": c.dispatch_seq},
            subject=f"complaint/{c.id}",
        )
        if entry.verb == "rerouted" and handover:
            await self._check_shift(uow, c, target, held_by)
            await self._check_bounce(uow, c)

    # ------------------------------------------------------------------ actions

    async def acknowledge(
        self, uow: UnitOfWork, c: Complaint, unit: str, by: str, at: dt.datetime
    ) -> None:
        entry = self._apply(lambda: lifecycle.acknowledge(c, unit=unit, by=by, at=at))
        await uow.cancel(ack_timer(c))
        await self._emit(uow, c, entry)

    async def return_order(
        self, uow: UnitOfWork, c: Complaint, unit: str, by: str, at: dt.datetime, reason: str
    ) -> None:
        """退单, then re-dispatch by the catalogue (or to triage) in the same step."""
        entry = self._apply(
            lambda: lifecycle.return_order(c, unit=unit, by=by, at=at, reason=reason)
        )
        await self._emit(uow, c, entry)
        planned = await self._planned_route(uow, c)
        await self._dispatch(
            uow, c, redispatch_after_return(self.city, planned, unit, c.district), by=ACTOR, at=at
        )
        await self._check_bounce(uow, c)

    async def reroute(
        self,
        uow: UnitOfWork,
        c: Complaint,
        unit: str,
        by: str,
        at: dt.datetime,
        to_unit: str,
        reason: str,
    ) -> None:
        """Re-dispatch by the supervising bureau (the triage queue's owner) or the city."""
        allowed = {triage_unit(self.city, c.district), CITY_BUREAU}
        if unit not in allowed:
            raise Conflict(f"only {' or '.join(sorted(allowed))} can re-dispatch complaint {c.id}")
        if not c.is_open:
            raise Conflict(f"complaint {c.id} is {c.status}: it can no longer be re-dispatched")
        if self.city.unit(to_unit) is None:
            raise Conflict(f"unknown unit {to_unit}")
        level = level_of(self.city, to_unit)
        await self._dispatch(
            uow,
            c,
            Route(unit=to_unit, level=level, reason=reason, street=c.street),
            by=by,
            at=at,
        )

    async def request_extension(
        self,
        uow: UnitOfWork,
        c: Complaint,
        unit: str,
        by: str,
        at: dt.datetime,
        days: int,
        reason: str,
    ) -> None:
        entry = self._apply(
            lambda: lifecycle.request_extension(
                c,
                unit=unit,
                by=by,
                at=at,
                days=days,
                reason=reason,
                max_days=self.settings.max_extension_days,
            )
        )
        await self._emit(uow, c, entry)

    def extension_deciders(self, c: Complaint) -> tuple[str, ...]:
        return (supervising_unit(c.unit or c.district), CITY_BUREAU)

    async def decide_extension(
        self,
        uow: UnitOfWork,
        c: Complaint,
        unit: str,
        by: str,
        at: dt.datetime,
        approved: bool,
        note: str | None,
        deciders: tuple[str, ...] | None = None,
    ) -> None:
        ext = c.extension
        previous_due = c.due
        new_due = (
            extend_deadline(c.due, ext.days)
            if approved and ext is not None and c.due is not None
            else None
        )
        entry = self._apply(
            lambda: lifecycle.decide_extension(
                c,
                unit=unit,
                by=by,
                at=at,
                approved=approved,
                note=note,
                new_due=new_due,
                allowed_deciders=deciders or self.extension_deciders(c),
            )
        )
        await self._emit(uow, c, entry)
        if approved and c.due != previous_due:
            await self._disarm_deadline(uow, c, previous_due)
            await self._arm_deadline(uow, c)

    async def resolve(
        self,
        uow: UnitOfWork,
        c: Complaint,
        unit: str,
        by: str,
        at: dt.datetime,
        outcome: str,
        verdict: Verdict | None,
    ) -> None:
        confirmed = confirms_violation(
            verdict, outcome, self.settings.violation_keywords, self.settings.violation_negations
        )
        if verdict is None and confirmed:
            verdict = "violation_confirmed"
        entry = self._apply(
            lambda: lifecycle.resolve(c, unit=unit, by=by, at=at, outcome=outcome, verdict=verdict)
        )
        await uow.cancel(ack_timer(c))
        await self._disarm_deadline(uow, c, c.due)
        await self._emit(uow, c, entry)
        if confirmed:
            await uow.schedule(
                timer_id("case-check", c.id),
                CASE_CHECK,
                case_check_due(at, self.settings.case_deadline_days),
                {"order_id": c.id},
                subject=f"complaint/{c.id}",
            )

    async def reclassify(
        self, uow: UnitOfWork, c: Complaint, category: str, by: str, at: dt.datetime
    ) -> None:
        """12345 改变分类: new matter, 办结 deadline recomputed (approved extensions kept), and
        re-routed by the catalogue for the new matter (not a hand-over by a unit)."""
        found = classify(self.matters, category, c.description)
        if found.matter is None:
            raise Conflict(f"unknown matter category {category!r}")
        matter = self.matters.get(found.matter)
        days = resolve_limit_days(
            c.kind, self.settings.resolve_days, matter.resolve_days if matter else {}
        )
        due = resolve_deadline(c.received_at, days)
        for ext in c.extensions:
            if ext.status == "approved":
                due = extend_deadline(due, ext.days)
        previous_due = c.due
        entry = self._apply(
            lambda: lifecycle.reclassify(
                c,
                matter=found.matter or "",
                matter_name=matter.name if matter else None,
                classified_by=found.by,
                category=category,
                by=by,
                at=at,
                due=due,
                limit_days=days,
            )
        )
        if entry is None:
            return
        await self._emit(uow, c, entry)
        if c.due != previous_due:
            await self._disarm_deadline(uow, c, previous_due)
            await self._arm_deadline(uow, c)
        planned = await self._planned_route(uow, c)
        if planned.unit == c.unit:
            c.matter_level = planned.matter_level
            return
        reason = f"12345改变分类为「{c.matter_name or c.matter}」，{planned.reason}"
        await self._dispatch(
            uow, c, planned.model_copy(update={"reason": reason}), by=by, at=at, handover=False
        )

    async def rate(
        self, uow: UnitOfWork, c: Complaint, by: str, at: dt.datetime, satisfaction: int
    ) -> None:
        entry = self._apply(lambda: lifecycle.rate(c, by=by, at=at, satisfaction=satisfaction))
        await self._emit(uow, c, entry)

    def _apply(self, transition: Callable[[], T]) -> T:
        try:
            return transition()
        except TransitionRefused as exc:
            raise self._refuse(exc) from exc

    async def _planned_route(self, uow: UnitOfWork, c: Complaint) -> Route:
        entry = await storage.get_entry(uow, c.district, c.matter) if c.matter else None
        return route(self.city, c.district, c.street or c.street_text, c.matter, entry)

    async def command(
        self,
        uow: UnitOfWork,
        order_id: str,
        action: Callable[[Complaint], Awaitable[None]],
    ) -> Complaint:
        """An HTTP action on one complaint: load, act, save (in the caller's transaction)."""
        c = await self._load(uow, order_id)
        await action(c)
        await self._save(uow, c)
        return c

    # ------------------------------------------------------------------ platform updates

    async def on_updated(self, event: Envelope, uow: UnitOfWork) -> None:
        """A unit's action reported by 12345; the platform is authoritative about who acts."""
        data = parse_data(event, WorkOrderUpdated)
        c = await storage.complaints(uow).get(data.order_id)
        if c is None:
            raise EventRejected(f"work order {data.order_id} is unknown (no created event)")
        fingerprint = update_fingerprint(data)
        if fingerprint in c.applied_updates:
            return  # the same action re-sent: nothing changes
        at = local(data.at).astimezone(dt.UTC)
        try:
            await self._apply_update(uow, c, data, at)
        except Conflict as exc:
            raise EventRejected(f"{data.order_id} {data.action} by {data.by_unit}: {exc}") from exc
        c.applied_updates.append(fingerprint)
        await self._save(uow, c)

    async def _apply_update(
        self, uow: UnitOfWork, c: Complaint, data: WorkOrderUpdated, at: dt.datetime
    ) -> None:
        unit, by, platform = data.by_unit, data.by_unit, self.settings.platform_unit
        if data.action == "rated":
            await self.rate(uow, c, platform, at, data.satisfaction or 0)
            return
        if data.action == "reclassified":
            await self.reclassify(uow, c, data.category or "", platform, at)
            return
        if c.is_open and c.unit != unit:
            # 12345 re-dispatched it to the unit now acting: a hand-over.
            if self.city.unit(unit) is None:
                raise Conflict(f"unknown unit {unit}")
            await self._dispatch(
                uow,
                c,
                Route(
                    unit=unit,
                    level=level_of(self.city, unit),
                    reason="12345平台改派",
                    street=c.street,
                ),
                by=platform,
                at=at,
            )
        if data.action in ("extended", "resolved") and c.status == "dispatched":
            await self.acknowledge(uow, c, unit, platform, at)  # the platform skipped 签收
        if data.action == "acknowledged":
            await self.acknowledge(uow, c, unit, by, at)
        elif data.action == "returned":
            await self.return_order(uow, c, unit, by, at, data.reason or "")
        elif data.action == "extended":
            days = data.extension_days or self.settings.default_extension_days
            await self.request_extension(uow, c, unit, by, at, days, data.reason or "延期")
            await self.decide_extension(
                uow, c, platform, platform, at, True, "12345平台同意延期", deciders=(platform,)
            )
        elif data.action == "resolved":
            extra = data.model_extra or {}
            raw = extra.get("verdict")
            verdict: Verdict | None = raw if raw in _VERDICTS else None  # type: ignore[assignment]
            await self.resolve(uow, c, unit, by, at, data.outcome or "", verdict)

    # ------------------------------------------------------------------ leads

    async def _check_bounce(self, uow: UnitOfWork, c: Complaint) -> None:
        if is_bounce(c.returns, c.handovers, self.bounce):
            await self._lead(
                uow,
                c,
                LeadKind.BOUNCE,
                (c.id,),
                f"工单 {c.id}（{c.matter_name or '事项不明'}）被退单 {c.returns} 次、"
                f"在单位间流转 {c.handovers} 次，疑似推诿",
                {"returns": c.returns, "handovers": c.handovers, "units": c.units_seen},
            )

    async def _check_shift(
        self, uow: UnitOfWork, c: Complaint, target: Route, held_by: list[str]
    ) -> None:
        """以属地为由推责: judged from the routing catalogue, not from the return's wording."""
        if target.level != "street" or c.matter is None:
            return
        entry = await storage.get_entry(uow, c.district, c.matter)
        if entry is None or not is_responsibility_shift(
            matter_level=entry.level,
            owner=entry.unit,
            held_by=held_by,
            to_unit=target.unit,
            to_level=target.level,
            exceptions=entry.streets.values(),
        ):
            return
        returns = [e for e in c.timeline if e.verb == "returned" and e.unit == entry.unit]
        await self._lead(
            uow,
            c,
            LeadKind.RESPONSIBILITY_SHIFT,
            (c.id, entry.unit),
            f"区级部门 {entry.unit} 的区级管辖事项「{c.matter_name}」（工单 {c.id}）"
            f"在其{'退单' if returns else '经手'}后转由街镇 {target.unit} 办理",
            {
                "unit": entry.unit,
                "matter": c.matter,
                "to_unit": target.unit,
                "reasons": [e.reason for e in returns],
                "returns": c.returns,
                "catalogue_level": entry.level,
            },
            unit=entry.unit,
        )

    async def _check_hotspot(self, uow: UnitOfWork, c: Complaint) -> None:
        """高频投诉: at most one lead per complaint, and one per place within a window; a
        duplicate (重复件) is counted once, as its original."""
        if c.matter is None or c.duplicate_of is not None:
            return
        window = self.settings.hotspot_window_days
        since = window_start(c.received_at, window)
        activities = storage.place_activity(uow)
        raised = False
        for key in sorted(c.place_keys, key=lambda k: not k.startswith("target:")):
            state_id = hotspot_id(c.district, c.matter, key)
            place = await activities.get(state_id) or PlaceActivity(id=state_id)
            place.record(c.id, c.received_at, window)
            activities.put(place)
            if raised or (place.last_at is not None and place.last_at >= since):
                continue  # one lead per complaint; this cluster was reported within the window
            ids = place.within(since, c.received_at)
            if not is_hotspot(len(ids), self.settings.hotspot_threshold):
                continue
            place.leads += 1
            place.last_at, place.complaints = c.received_at, ids
            activities.put(place)
            raised = True
            await self._lead(
                uow,
                c,
                LeadKind.HOTSPOT,
                (c.district, c.matter, key, str(place.leads)),
                f"{window:g} 天内同一地点/对象「{key.split(':', 1)[1]}」"
                f"收到 {len(ids)} 件「{c.matter_name}」投诉",
                {"place": key, "matter": c.matter, "complaints": ids, "window_days": window},
            )

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

    # ------------------------------------------------------------------ timers

    async def on_ack_due(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """签收超时: remind the unit holding it (once per dispatch)."""
        c = await storage.complaints(uow).get(timer["payload"]["order_id"])
        if c is None or timer["_id"] != ack_timer(c):
            return
        if lifecycle.mark_overdue(c, stage="acknowledge", by=ACTOR, at=uow.now()) is None:
            return
        await self._notice(
            uow,
            c,
            NoticeKind.REMINDER,
            f"hotline:ack-reminder:{c.id}:{c.dispatch_seq}",
            f"12345工单 {c.id}（{c.matter_name or '待分拨'}）派单后超过"
            f" {self.settings.ack_hours:g} 个工作小时未签收，请立即签收办理",
            c.due,
            {"stage": "acknowledge", "ack_due": c.ack_due, "address": c.address},
        )
        await self._save(uow, c)

    async def on_resolve_due(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """办结超期: mark overdue, 催办, and arm the 通报 timer."""
        c = await storage.complaints(uow).get(timer["payload"]["order_id"])
        if c is None:
            return
        if timer["_id"] != due_timer(c):
            return  # armed for a deadline that has since moved
        entry = lifecycle.mark_overdue(c, stage="resolve", by=ACTOR, at=uow.now())
        if entry is None or c.due is None:
            return
        await self._emit(uow, c, entry)
        due_cn = local(c.due).strftime("%Y-%m-%d %H:%M")
        await self._notice(
            uow,
            c,
            NoticeKind.REMINDER,
            f"hotline:reminder:{c.id}:{c.due.isoformat()}",
            f"12345工单 {c.id}（{c.matter_name or '待分拨'}，{c.address}）应于 {due_cn} 前办结，"
            "现已超期",
            None,
            {"stage": "resolve", "due": c.due, "limit_days": c.limit_days},
        )
        await self._arm_deadline(uow, c)  # now overdue: the 通报 timer
        await self._save(uow, c)

    async def on_escalate(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """超期 N 个工作日仍未办结: 通报 and an OVERDUE lead."""
        c = await storage.complaints(uow).get(timer["payload"]["order_id"])
        if c is None or c.due is None:
            return
        now = uow.now()
        days = working_days_overdue(c.due, now)
        if timer["_id"] != escalate_timer(c) or days < self.settings.escalate_after_days:
            return  # armed for a deadline that has since moved
        entry = lifecycle.escalate(c, by=ACTOR, at=now, days_overdue=days)
        if entry is None:
            return
        await self._emit(uow, c, entry)
        summary = (
            f"12345工单 {c.id}（{c.matter_name or '待分拨'}，{c.address}）"
            f"办结期限 {local(c.due).strftime('%Y-%m-%d')}，已超期 {days} 个工作日仍未办结"
        )
        await self._notice(
            uow,
            c,
            NoticeKind.ESCALATION,
            f"hotline:escalation:{c.id}",
            summary,
            None,
            {
                "days_overdue": days,
                "due": c.due,
                "supervisor": supervising_unit(c.unit or c.district),
            },
        )
        await self._lead(
            uow,
            c,
            LeadKind.OVERDUE,
            (c.id,),
            summary,
            {"due": c.due, "days_overdue": days, "status": c.status},
        )
        await self._save(uow, c)

    async def on_case_check(self, timer: dict[str, Any], uow: UnitOfWork) -> None:
        """应立尽立: a confirmed violation N days ago and still no case for the target."""
        c = await storage.complaints(uow).get(timer["payload"]["order_id"])
        if c is None or c.verdict != "violation_confirmed" or c.resolved_at is None:
            return
        times = await storage.case_times_for(uow, order_id=c.id, keys=c.target_keys)
        now = uow.now()
        days = self.settings.case_deadline_days
        if not is_case_not_opened(c.resolved_at, now, times, days):
            return
        await self._lead(
            uow,
            c,
            LeadKind.CASE_NOT_OPENED,
            (c.id,),
            f"工单 {c.id}（{c.matter_name or '事项不明'}）于 "
            f"{local(c.resolved_at).strftime('%Y-%m-%d')} 办结，确认违法行为成立，"
            f"但 {days} 日内未见对{c.target or c.address}立案",
            {"resolved_at": c.resolved_at, "outcome": c.outcome, "target": c.target, "days": days},
        )
        await self._save(uow, c)

    # ------------------------------------------------------------------ cases

    async def on_case_closed(self, event: Envelope, uow: UnitOfWork) -> None:
        """Remember the case's party, so 应立尽立 checks find it; link waiting complaints."""
        data = parse_data(event, CaseClosed)
        keys = sorted(
            set(target_keys(data.party.name))
            | ({f"uscc:{data.party.id.upper()}"} if data.party.id else set())
        )
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
        for c in await storage.complaints_for_case(
            uow, source_order_id=data.source_order_id, keys=keys
        ):
            if data.case_id not in c.case_ids:
                c.case_ids.append(data.case_id)
                await self._save(uow, c)


_VERDICTS: frozenset[str] = frozenset(
    ("violation_confirmed", "rectified", "no_violation", "not_applicable")
)
