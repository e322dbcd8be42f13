"""Deterministic synthetic external events: 12345 work orders and enforcement case files.

``DemoGenerator(seed, start, mix).events(n_orders, n_cases)`` returns ``(time, Envelope)``
pairs sorted by event time, each envelope's ``data`` valid against its contract in
:mod:`shared.contracts`. Every random choice (ids included) comes from ``random.Random``
objects seeded from ``seed``, so the same seed gives byte-identical output; ``DemoMix``
sets how often the situations the supervisors hunt for occur (duplicates, bounces,
hotspots, overdue complaints, defective case files, top-tier penalties, late or missing
filings). The situation rates are honoured exactly (counts are rounded, then shuffled),
not just on average; flavour rates (channels, late acknowledgements, ratings) are drawn.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devtools.demo import catalogue as cat
from devtools.demo import fakes
from devtools.demo import inspections as insp
from shared.city import City, District, Street, load_city
from shared.contracts import (
    CaseClosed,
    Contract,
    PenaltyDecided,
    PenaltyFiled,
    WorkOrderCreated,
    WorkOrderUpdated,
)
from shared.envelope import Envelope
from shared.workcalendar import CST, OfficeHours, add_working_days, is_working_day

WORKORDER_SOURCE = "/12345/platform"
CREATED = "gov.12345.workorder.created"
UPDATED = "gov.12345.workorder.updated"
CASE_CLOSED = "gov.enforcement.case.closed"
PENALTY_DECIDED = "gov.enforcement.penalty.decided"
PENALTY_FILED = "gov.enforcement.penalty.filed"

SIMPLE_CAP: dict[str, float] = {"individual": 200, "business": 3000, "other": 3000}
"""当场处罚 (simple procedure) is allowed up to these fines (行政处罚法 第五十一条)."""

HOURS = OfficeHours()
HOURS_PER_DAY = 8.0  # OfficeHours: 09–12 and 13–18


def case_source(district: str) -> str:
    return f"/case-system/{district}"


class DemoMix(BaseModel):
    """How often each situation occurs (shares of work orders or of case files)."""

    model_config = ConfigDict(extra="forbid")

    span_days: float = Field(
        default=30.0, gt=0, le=366, description="window of received/decided times"
    )
    # -- work orders (shares of distinct orders; bounce/return_once/extension/overdue exclusive)
    duplicate_rate: float = Field(default=0.05, ge=0, le=1, description="created event re-sent")
    bounce_rate: float = Field(default=0.08, ge=0, le=1, description="returned 2-3 times (推诿)")
    territorial_reason_rate: float = Field(
        default=0.6, ge=0, le=1, description="bounces of district-level matters citing 属地 first"
    )
    return_once_rate: float = Field(
        default=0.05, ge=0, le=1, description="returned once, then handled"
    )
    extension_rate: float = Field(
        default=0.05, ge=0, le=1, description="extension requested (延期)"
    )
    overdue_rate: float = Field(
        default=0.06, ge=0, le=1, description="never acknowledged or resolved"
    )
    hotspot_rate: float = Field(
        default=0.10, ge=0, le=1, description="in a same address+matter cluster"
    )
    hotspot_window_days: float = Field(default=4.0, gt=0, le=60)
    late_resolution_rate: float = Field(
        default=0.05, ge=0, le=1, description="resolved past 13 days"
    )
    late_ack_rate: float = Field(default=0.12, ge=0, le=1, description="acknowledged after 2 hours")
    violation_confirmed_rate: float = Field(
        default=0.35, ge=0, le=1, description="of resolved complaints"
    )
    case_for_confirmed_rate: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="confirmed complaints that become a case (rest: 应立未立)",
    )
    rating_rate: float = Field(default=0.7, ge=0, le=1)
    consultation_rate: float = Field(default=0.08, ge=0, le=1)
    emergency_rate: float = Field(default=0.03, ge=0, le=1)
    uncategorised_rate: float = Field(default=0.3, ge=0, le=1, description="no matter code given")
    unknown_street_rate: float = Field(default=0.03, ge=0, le=1, description="no street: triage")
    # -- case files (shares of case files; date defects: of general-procedure files)
    simple_procedure_rate: float = Field(default=0.12, ge=0, le=1)
    no_penalty_rate: float = Field(
        default=0.08, ge=0, le=1, description="不予处罚 (minor, first offence)"
    )
    warning_rate: float = Field(default=0.05, ge=0, le=1)
    missing_document_rate: float = Field(default=0.08, ge=0, le=1)
    late_service_rate: float = Field(
        default=0.05, ge=0, le=1, description="served > 7 working days after"
    )
    late_decision_rate: float = Field(
        default=0.03, ge=0, le=1, description="decided > 90 days after"
    )
    decided_before_notice_rate: float = Field(default=0.03, ge=0, le=1)
    expired_cert_rate: float = Field(default=0.04, ge=0, le=1)
    single_officer_rate: float = Field(default=0.03, ge=0, le=1)
    no_legal_review_rate: float = Field(default=0.3, ge=0, le=1, description="of large fines")
    no_publicity_rate: float = Field(default=0.03, ge=0, le=1)
    no_recording_rate: float = Field(default=0.04, ge=0, le=1)
    no_baseline_rate: float = Field(default=0.04, ge=0, le=1, description="裁量基准 not cited")
    minor_fined_rate: float = Field(default=0.02, ge=0, le=1, description="首违不罚 ignored")
    # -- penalties (top_tier: of fined general-procedure files; filings: of top-tier ones)
    top_tier_rate: float = Field(default=0.15, ge=0, le=1)
    disproportion_rate: float = Field(default=0.25, ge=0, le=1, description="top-tier, mitigated")
    late_filing_rate: float = Field(default=0.2, ge=0, le=1)
    missing_filing_rate: float = Field(default=0.15, ge=0, le=1)
    # -- enterprise inspections, plans, certificates, review outcomes
    inspections: insp.InspectionMix = Field(default_factory=insp.InspectionMix)

    @model_validator(mode="after")
    def _exclusive_shares(self) -> DemoMix:
        groups = {
            "bounce+return_once+extension+overdue": self.bounce_rate
            + self.return_once_rate
            + self.extension_rate
            + self.overdue_rate,
            "consultation+emergency": self.consultation_rate + self.emergency_rate,
            "simple_procedure+no_penalty+warning": self.simple_procedure_rate
            + self.no_penalty_rate
            + self.warning_rate,
            "late_filing+missing_filing": self.late_filing_rate + self.missing_filing_rate,
        }
        for name, total in groups.items():
            if total > 1.0 + 1e-9:
                raise ValueError(f"{name} rates are exclusive and add up to {total:.2f} > 1")
        return self


# ---------------------------------------------------------------- helpers


def assign(rng: random.Random, n: int, rates: dict[str, float], rest: str) -> list[str]:
    """Exactly round(rate·n) labels each (in order of ``rates``), the rest ``rest``, shuffled."""
    labels: list[str] = []
    for label, rate in rates.items():
        labels += [label] * min(round(rate * n), n - len(labels))
    labels += [rest] * (n - len(labels))
    rng.shuffle(labels)
    return labels


def pick_some(rng: random.Random, items: list[int], rate: float) -> set[int]:
    return set(rng.sample(items, min(len(items), round(rate * len(items)))))


def weighted(rng: random.Random, pairs: Iterable[tuple[Any, float]]) -> Any:
    items = list(pairs)
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def office_time(rng: random.Random, day: dt.date) -> dt.datetime:
    """A moment in office hours on ``day`` (moved to the next working day if it is off)."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    hour = rng.choice((9, 10, 11, 13, 14, 15, 16, 17))
    return dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)), CST)


def after_hours(at: dt.datetime, hours: float) -> dt.datetime:
    """``hours`` office hours after ``at`` (units act in office hours), in CST."""
    return HOURS.add_working_hours(at, hours).astimezone(CST).replace(microsecond=0)


@dataclass
class Location:
    district: District
    street: Street | None
    road: str
    address: str


@dataclass
class Order:
    order_id: str
    received: dt.datetime
    location: Location
    matter: cat.Matter
    kind: str
    target: str | None
    party_name: str | None
    party_id: str | None
    scenario: str = "normal"
    resolved_at: dt.datetime | None = None
    verdict: str | None = None
    acting_unit: str = ""


@dataclass
class Plan:
    """A case file being drafted: what it is about and which defects it gets."""

    index: int
    district: District
    unit: str
    matter: cat.Matter
    procedure: str
    decision_kind: str
    party_type: str
    party_name: str
    party_id: str | None
    provision: cat.Provision
    source_order: Order | None
    top_tier: bool = False
    fine: float = 0.0
    defects: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- the generator


class DemoGenerator:
    """Deterministic by ``seed``: same seed, start and mix → identical events and ids."""

    def __init__(self, seed: int, start: dt.datetime, mix: DemoMix | None = None) -> None:
        self.seed = seed
        self.start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
        self.mix = mix or DemoMix()
        self.city: City = load_city()

    # -- public -------------------------------------------------------------------

    def events(
        self, n_orders: int, n_cases: int, n_inspections: int | None = None
    ) -> list[tuple[dt.datetime, Envelope]]:
        """Work orders with their updates, case files with their penalties and filings, and
        enterprise inspections with their plans, certificates and review outcomes (by
        default half as many inspections as case files)."""
        self._rng = random.Random(f"demo:{self.seed}")
        self._ids = random.Random(f"demo-ids:{self.seed}")
        self._out: list[tuple[dt.datetime, int, Envelope]] = []
        self._used_ids: set[str] = set()
        self._rosters: dict[str, list[dict[str, Any]]] = {}
        orders = self._orders(n_orders)
        self._cases(n_cases, orders)
        self._inspections(n_cases // 2 if n_inspections is None else n_inspections)
        self._out.sort(key=lambda item: (item[0], item[1]))
        return [(when, env) for when, _, env in self._out]

    # -- plumbing -----------------------------------------------------------------

    def _emit(
        self,
        when: dt.datetime,
        type_: str,
        source: str,
        district: str,
        key: str,
        subject: str,
        data: Contract,
    ) -> None:
        envelope = Envelope(
            id=fakes.uuid_from(self._ids),
            source=source,
            type=type_,
            time=when,
            subject=subject,
            district=district,
            partitionkey=key,
            data=data.model_dump(mode="json", exclude_none=True),
        )
        self._out.append((when, len(self._out), envelope))

    def _unique(self, make: Any) -> str:
        for _ in range(1000):
            value = str(make())
            if value not in self._used_ids:
                self._used_ids.add(value)
                return value
        raise RuntimeError("could not draw a unique id")

    def _district(self) -> District:
        return self.city.district(weighted(self._rng, cat.DISTRICT_WEIGHTS.items())) or (
            self._rng.choice(self.city.districts)
        )

    def _location(self, district: District | None = None) -> Location:
        rng = self._rng
        district = district or self._district()
        street: Street | None = rng.choice(district.streets)
        road = rng.choice(cat.ROADS.get(district.code, ("人民路",)))
        if rng.random() < self.mix.unknown_street_rate:
            return Location(district, None, road, f"上海市{district.name}{road}附近")
        number = rng.randrange(1, 2000)
        if rng.random() < 0.4:
            address = f"上海市{district.name}{road}{number}弄{rng.randrange(1, 40)}号"
        else:
            address = f"上海市{district.name}{road}{number}号"
        return Location(district, street, road, address)

    def _responsible(self, loc: Location, matter: cat.Matter) -> str:
        """Who 12345 dispatches to (mirrors a plain routing catalogue)."""
        if matter.delegated and loc.street is not None:
            return loc.street.unit.id
        return f"{loc.district.code}-{matter.unit_kind}"

    def _roster(self, unit: str) -> list[dict[str, Any]]:
        """A unit's officers; the last one's certificate has lapsed (used by defects only)."""
        if unit not in self._rosters:
            rng = random.Random(f"demo-roster:{self.seed}:{unit}")
            district = unit.split("-", 1)[0]
            base = self.start.astimezone(CST).date()
            officers = []
            size = rng.randint(5, 9)
            for i in range(size + 1):
                expired = i == size
                valid_until = (
                    base - dt.timedelta(days=rng.randint(30, 400))
                    if expired
                    else base + dt.timedelta(days=rng.randint(400, 1500))
                )
                officers.append(
                    {
                        "id": f"{unit}-{i + 1:03d}",
                        "name": fakes.person_name(rng),
                        "cert_no": f"{district}{rng.randint(2015, 2024)}{rng.randrange(10000):04d}",
                        "cert_valid_until": valid_until,
                    }
                )
            self._rosters[unit] = officers
        return self._rosters[unit]

    # -- work orders ----------------------------------------------------------------

    def _orders(self, n: int) -> list[Order]:
        rng, mix = self._rng, self.mix
        span = dt.timedelta(days=mix.span_days)
        scenarios = assign(
            rng,
            n,
            {
                "bounce": mix.bounce_rate,
                "return_once": mix.return_once_rate,
                "extension": mix.extension_rate,
                "overdue": mix.overdue_rate,
            },
            "normal",
        )
        kinds = assign(
            rng,
            n,
            {"consultation": mix.consultation_rate, "emergency": mix.emergency_rate},
            "complaint",
        )
        duplicates = set(rng.sample(range(n), min(n, round(mix.duplicate_rate * n))))
        hotspot_members = round(mix.hotspot_rate * n) if n >= 3 else 0
        clusters: list[int] = []
        while sum(clusters) < hotspot_members:
            left = hotspot_members - sum(clusters)
            size = min(rng.randint(3, 6), left)
            if size < 3:
                if clusters:
                    clusters[-1] += size
                    continue
                size = left
            clusters.append(size)

        orders: list[Order] = []
        index = 0
        for size in clusters:
            first = self._new_order(index, scenarios[index], kinds[index], span, None)
            orders.append(first)
            index += 1
            for _ in range(size - 1):
                orders.append(self._new_order(index, scenarios[index], kinds[index], span, first))
                index += 1
        while index < n:
            orders.append(self._new_order(index, scenarios[index], kinds[index], span, None))
            index += 1
        for i, order in enumerate(orders):
            self._order_events(order, duplicate=i in duplicates)
        return orders

    def _received(self, span: dt.timedelta) -> dt.datetime:
        rng = self._rng
        when = self.start + span * rng.random()
        local = when.astimezone(CST)
        if local.hour < 7 and rng.random() < 0.8:  # few citizens call at night
            local += dt.timedelta(hours=rng.randint(8, 12))
        return local.replace(microsecond=0)

    def _new_order(
        self, index: int, scenario: str, kind: str, span: dt.timedelta, like: Order | None
    ) -> Order:
        rng = self._rng
        if like is not None:  # a hotspot: same place, matter and target, within days
            received = like.received + dt.timedelta(
                hours=rng.uniform(0.5, self.mix.hotspot_window_days * 24)
            )
            kind = "complaint" if kind == "consultation" else kind
            return Order(
                self._order_id(received),
                received.replace(microsecond=0),
                like.location,
                like.matter,
                kind,
                like.target,
                like.party_name,
                like.party_id,
                scenario,
            )
        loc = self._location()
        matter: cat.Matter = weighted(rng, ((m, m.weight) for m in cat.MATTERS))
        target = party_name = party_id = None
        if matter.business_kinds and rng.random() < 0.8:
            biz_kind = rng.choice(matter.business_kinds)
            party_name, party_id = fakes.business(
                rng, loc.district.code, biz_kind, loc.district.name
            )
            target = f"{party_name}（{party_id}）"
        received = self._received(span)
        return Order(
            self._order_id(received),
            received,
            loc,
            matter,
            kind,
            target,
            party_name,
            party_id,
            scenario,
        )

    def _order_id(self, received: dt.datetime) -> str:
        day = received.astimezone(CST).strftime("%Y%m%d")
        return self._unique(lambda: f"GD{day}{self._rng.randrange(10**8):08d}")

    def _description(self, order: Order) -> str:
        rng = self._rng
        name = order.party_name or rng.choice(("一家小店", "某商户", "沿街商铺"))
        fill = {
            "addr": order.location.address.removeprefix("上海市"),
            "biz": name,
            "goods": rng.choice(cat.GOODS),
            "when": rng.choice(cat.WHEN),
            "matter": order.matter.name,
        }
        if order.kind == "consultation":
            return rng.choice(cat.CONSULTATION_DESCRIPTIONS).format(**fill)
        text = rng.choice(order.matter.descriptions).format(**fill)
        if order.kind == "emergency":
            text = "【紧急】" + text + "现场存在安全隐患，请尽快处置。"
        return text

    def _order_events(self, order: Order, duplicate: bool) -> None:
        rng, mix = self._rng, self.mix
        loc = order.location
        district = loc.district.code
        created = WorkOrderCreated.model_validate(
            {
                "order_id": order.order_id,
                "channel": weighted(rng, (("phone", 70), ("app", 15), ("web", 10), ("wechat", 5))),
                "received_at": order.received,
                "district": district,
                "street": loc.street.name if loc.street else None,
                "address": loc.address,
                "category": None if rng.random() < mix.uncategorised_rate else order.matter.code,
                "kind": order.kind,
                "description": self._description(order),
                "target": order.target,
                "complainant": {
                    "name": fakes.complainant_name(rng),
                    "phone": fakes.mobile_phone(rng),
                },
            }
        )
        emit = self._order_emitter(order)
        emit(order.received, created)
        if duplicate:  # the platform re-sends the same work order (new event id)
            emit(order.received + dt.timedelta(minutes=rng.randint(3, 600)), created)

        responsible = self._responsible(loc, order.matter)
        at = order.received
        acting = responsible
        scenario = order.scenario
        if scenario == "overdue" and rng.random() < 0.5:
            return  # never acknowledged
        if scenario in ("bounce", "return_once"):
            hops = 1 if scenario == "return_once" else rng.choice((2, 2, 3))
            acting, at = self._returns(order, responsible, hops, emit)
        late = rng.random() < mix.late_ack_rate
        at = after_hours(at, rng.uniform(2.2, 8.0) if late else rng.uniform(0.1, 1.9))
        emit(at, self._update(order, "acknowledged", acting, at))
        order.acting_unit = acting
        if scenario == "overdue":
            return  # acknowledged, never resolved
        if order.kind == "emergency":
            at = after_hours(at, rng.uniform(0.5, 5.0))
        elif order.kind == "consultation":
            at = after_hours(at, rng.uniform(1.0, HOURS_PER_DAY * 2.5))
        elif scenario == "extension":
            at = after_hours(at, rng.uniform(HOURS_PER_DAY * 6, HOURS_PER_DAY * 11))
            days = rng.randint(5, 15)
            emit(
                at,
                self._update(
                    order,
                    "extended",
                    acting,
                    at,
                    reason=rng.choice(cat.EXTENSION_REASONS),
                    extension_days=days,
                ),
            )
            at = after_hours(at, rng.uniform(HOURS_PER_DAY * 2, HOURS_PER_DAY * days))
        elif rng.random() < mix.late_resolution_rate:
            at = after_hours(at, rng.uniform(HOURS_PER_DAY * 13.5, HOURS_PER_DAY * 20))
        else:
            at = after_hours(at, rng.uniform(3.0, HOURS_PER_DAY * 12))
        outcome, verdict = self._outcome(order)
        order.resolved_at, order.verdict = at, verdict
        emit(at, self._update(order, "resolved", acting, at, outcome=outcome, verdict=verdict))
        if rng.random() < mix.rating_rate:
            rated_at = (at + dt.timedelta(hours=rng.uniform(12, 72))).replace(microsecond=0)
            score = weighted(rng, ((5, 50), (4, 25), (3, 12), (2, 8), (1, 5)))
            emit(
                rated_at,
                self._update(order, "rated", acting, rated_at, satisfaction=score),
            )

    def _order_emitter(self, order: Order) -> Any:
        def emit(when: dt.datetime, data: Contract) -> None:
            type_ = CREATED if isinstance(data, WorkOrderCreated) else UPDATED
            self._emit(
                when,
                type_,
                WORKORDER_SOURCE,
                order.location.district.code,
                order.order_id,
                f"workorder/{order.order_id}",
                data,
            )

        return emit

    def _update(
        self, order: Order, action: str, unit: str, at: dt.datetime, **extra: Any
    ) -> WorkOrderUpdated:
        return WorkOrderUpdated.model_validate(
            {"order_id": order.order_id, "action": action, "by_unit": unit, "at": at, **extra}
        )

    def _returns(
        self, order: Order, responsible: str, hops: int, emit: Any
    ) -> tuple[str, dt.datetime]:
        """退单 ``hops`` times between the units involved; returns who finally takes it."""
        rng = self._rng
        loc, matter = order.location, order.matter
        district_unit = f"{loc.district.code}-{matter.unit_kind}"
        streets = loc.district.streets
        street = loc.street or rng.choice(streets)
        neighbour = rng.choice([s for s in streets if s.id != street.id] or streets)
        if hops == 1:
            chain = [(responsible, rng.choice(cat.RETURN_REASONS_OTHER[1:]))]
            final = responsible
        elif not matter.delegated or loc.street is None:
            territorial = rng.random() < self.mix.territorial_reason_rate
            first_reason = (
                rng.choice(cat.RETURN_REASONS_TERRITORIAL)
                if territorial
                else rng.choice(cat.RETURN_REASONS_OTHER[2:])
            )
            chain = [
                (district_unit, first_reason),
                (street.unit.id, cat.RETURN_REASONS_OTHER[0]),
                (district_unit, rng.choice(cat.RETURN_REASONS_TERRITORIAL)),
            ]
            final = district_unit
        else:
            chain = [
                (street.unit.id, cat.RETURN_REASONS_OTHER[1]),
                (neighbour.unit.id, cat.RETURN_REASONS_OTHER[1]),
                (district_unit, cat.RETURN_REASONS_TERRITORIAL[0]),
            ]
            final = street.unit.id
        at = order.received
        for unit, reason in chain[:hops]:
            at = after_hours(at, self._rng.uniform(0.3, 6.0))
            emit(at, self._update(order, "returned", unit, at, reason=reason))
        return final, at

    def _outcome(self, order: Order) -> tuple[str, str | None]:
        rng = self._rng
        if order.kind == "consultation":
            return rng.choice(cat.OUTCOME_CONSULTATION), None
        roll = rng.random()
        if roll < self.mix.violation_confirmed_rate:
            return rng.choice(cat.OUTCOME_CONFIRMED), "violation_confirmed"
        if roll < self.mix.violation_confirmed_rate + (1 - self.mix.violation_confirmed_rate) / 2:
            return rng.choice(cat.OUTCOME_RECTIFIED), "rectified"
        text = rng.choice(cat.OUTCOME_NOT_FOUND).format(when=rng.choice(cat.WHEN))
        return text, "no_violation"

    # -- case files -----------------------------------------------------------------

    def _inspections(self, n: int) -> None:
        def emit(when: dt.datetime, type_: str, district: str, key: str, data: Contract) -> None:
            subject = f"{type_.rsplit('.', 2)[-2]}/{key}"
            self._emit(when, type_, case_source(district), district, key, subject, data)

        insp.generate(
            random.Random(f"demo-inspections:{self.seed}"),
            self.city,
            self.start,
            dt.timedelta(days=self.mix.span_days),
            n,
            self.mix.inspections,
            self._roster,
            self._unique,
            emit,
        )

    def _cases(self, n: int, orders: list[Order]) -> None:
        rng, mix = self._rng, self.mix
        confirmed = [o for o in orders if o.verdict == "violation_confirmed"]
        linked = rng.sample(confirmed, min(n, round(mix.case_for_confirmed_rate * len(confirmed))))
        linked.sort(key=lambda o: o.order_id)
        shapes = assign(
            rng,
            n,
            {
                "simple": mix.simple_procedure_rate,
                "no_penalty": mix.no_penalty_rate,
                "warning": mix.warning_rate,
            },
            "fine",
        )
        plans = [
            self._plan(i, shape, linked[i] if i < len(linked) else None)
            for i, shape in enumerate(shapes)
        ]
        general = [p.index for p in plans if p.procedure == "general"]
        unlinked_general = [i for i in general if plans[i].source_order is None]
        fined_general = [
            p.index for p in plans if p.procedure == "general" and p.decision_kind == "fine"
        ]
        top = pick_some(rng, fined_general, mix.top_tier_rate)
        for i in top:
            plans[i].top_tier = True
        for p in plans:
            p.fine = self._fine(p)
        large = [p.index for p in plans if p.fine >= cat.LARGE_FINE[p.party_type]]
        all_ix = [p.index for p in plans]
        mitigable = [p.index for p in plans if p.decision_kind == "fine" and not p.top_tier]
        for name, pool, rate in (
            ("missing_document", all_ix, mix.missing_document_rate),
            ("late_service", general, mix.late_service_rate),
            ("late_decision", unlinked_general, mix.late_decision_rate),
            ("decided_before_notice", general, mix.decided_before_notice_rate),
            ("expired_cert", all_ix, mix.expired_cert_rate),
            ("single_officer", all_ix, mix.single_officer_rate),
            ("no_legal_review", large, mix.no_legal_review_rate),
            ("no_publicity", all_ix, mix.no_publicity_rate),
            ("no_recording", all_ix, mix.no_recording_rate),
            ("no_baseline", all_ix, mix.no_baseline_rate),
            ("disproportion", sorted(top), mix.disproportion_rate),
            ("minor_fined", mitigable, mix.minor_fined_rate),
        ):
            for i in pick_some(rng, pool, rate):
                plans[i].defects.add(name)
        top_plans = sorted(top)
        filing = dict(
            zip(
                top_plans,
                assign(
                    rng,
                    len(top_plans),
                    {"late": mix.late_filing_rate, "missing": mix.missing_filing_rate},
                    "on_time",
                ),
                strict=True,
            )
        )
        for p in plans:
            self._case_events(p, filing.get(p.index))

    def _plan(self, index: int, shape: str, order: Order | None) -> Plan:
        rng = self._rng
        if order is not None:
            district, matter = order.location.district, order.matter
            unit = order.acting_unit or self._responsible(order.location, matter)
        else:
            district = self._district()
            if shape == "simple":
                matter = cat.MATTER_BY_CODE[rng.choice(("ZDJY", "ZYRM", "WZJY"))]
            else:
                matter = weighted(rng, ((m, m.weight) for m in cat.MATTERS))
            street = rng.choice(district.streets)
            unit = street.unit.id if matter.delegated else f"{district.code}-{matter.unit_kind}"
        procedure = "simple" if shape == "simple" else "general"
        provisions = [cat.PROVISIONS[k] for k in matter.provisions]
        if order is not None and order.party_name and order.party_id:
            party_type, party_name, party_id = "business", order.party_name, order.party_id
        elif procedure == "general" and matter.business_kinds and rng.random() < 0.75:
            name, code = fakes.business(
                rng, district.code, rng.choice(matter.business_kinds), district.name
            )
            party_type, party_name, party_id = "business", name, code
        else:
            party_type = "individual"
            party_name = fakes.person_name(rng)
            party_id = fakes.masked_id_number(rng, district.code)
        usable = [p for p in provisions if party_type in p.ranges] or provisions
        provision = rng.choice(usable)
        if party_type not in provision.ranges:  # e.g. food safety: always a business
            party_type = "business"
            if party_id is None or "*" in party_id:
                party_name, party_id = fakes.business(
                    rng,
                    district.code,
                    rng.choice(matter.business_kinds or ("商贸",)),
                    district.name,
                )
        if procedure == "simple" and provision.range_for(party_type)[0] > SIMPLE_CAP[party_type]:
            procedure, shape = "general", "fine"  # 当场处罚 only for small fines
        decision = {"simple": "fine", "fine": "fine"}.get(shape, shape)
        if procedure == "simple" and rng.random() < 0.3:
            decision = "warning"
        return Plan(
            index,
            district,
            unit,
            matter,
            procedure,
            decision,
            party_type,
            party_name,
            party_id,
            provision,
            order,
        )

    def _fine(self, plan: Plan) -> float:
        if plan.decision_kind != "fine":
            return 0.0
        lo, hi = plan.provision.range_for(plan.party_type)
        if plan.top_tier:
            return float(hi)
        if plan.procedure == "simple":
            hi = min(hi, SIMPLE_CAP[plan.party_type])
        step = 100 if hi >= 2000 else 10
        share = self._rng.choice((0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8))
        amount = lo + (hi - lo) * share
        amount = max(lo, step, (amount // step) * step)
        if amount >= plan.provision.range_for(plan.party_type)[1]:
            amount -= step
        return float(amount)

    def _case_dates(self, plan: Plan) -> dict[str, dt.date]:
        rng = self._rng
        if plan.source_order is not None and plan.source_order.resolved_at is not None:
            discovered = plan.source_order.resolved_at.astimezone(CST).date()
            if plan.procedure == "simple":
                decided = discovered
            else:
                filed = add_working_days(discovered, rng.randint(0, 3))
                notified = add_working_days(filed, rng.randint(3, 10))
                decided = add_working_days(notified, rng.randint(3, 6))
        else:
            span = dt.timedelta(days=self.mix.span_days)
            decided = (self.start + span * rng.random()).astimezone(CST).date()
            while not is_working_day(decided):
                decided += dt.timedelta(days=1)
            notified = decided - dt.timedelta(days=rng.randint(4, 10))
            filed = notified - dt.timedelta(days=rng.randint(5, 50))
            discovered = filed - dt.timedelta(days=rng.randint(0, 5))
            if plan.procedure == "simple":
                discovered = decided
        if plan.procedure == "simple":
            closed = decided + dt.timedelta(days=rng.randint(0, 3))
            return {"discovered": decided, "decided": decided, "served": decided, "closed": closed}
        if "late_decision" in plan.defects:
            filed = decided - dt.timedelta(days=rng.randint(95, 140))
            discovered = filed - dt.timedelta(days=rng.randint(0, 5))
        if "decided_before_notice" in plan.defects:
            notified = decided + dt.timedelta(days=rng.randint(1, 3))
        served = (  # 七日 are working days (《行政处罚法》第八十五条)
            add_working_days(decided, rng.randint(8, 18))
            if "late_service" in plan.defects
            else decided + dt.timedelta(days=rng.randint(0, 5))
        )
        closed = max(served, notified) + dt.timedelta(days=rng.randint(2, 20))
        return {
            "discovered": discovered,
            "filed": filed,
            "notified": notified,
            "decided": decided,
            "served": served,
            "closed": closed,
        }

    def _documents(self, plan: Plan, dates: dict[str, dt.date]) -> list[dict[str, Any]]:
        rng = self._rng
        if plan.procedure == "simple":
            docs = [(kind, dates["decided"]) for kind in cat.SIMPLE_DOCUMENTS]
        else:
            large = plan.fine >= cat.LARGE_FINE[plan.party_type]
            filed, notified, decided = dates["filed"], dates["notified"], dates["decided"]
            investigated = min(filed + dt.timedelta(days=rng.randint(1, 5)), notified)
            docs = [
                ("立案审批表", filed),
                ("现场检查笔录", dates["discovered"]),
                ("调查询问笔录", investigated),
                ("证据材料", investigated),
            ]
            if plan.decision_kind == "no_penalty":
                docs.append(("不予行政处罚决定书", decided))
            else:
                docs.append(("行政处罚事先告知书", notified))
                docs.append(("陈述申辩笔录", notified + dt.timedelta(days=rng.randint(1, 3))))
                if large:
                    docs.append(("听证告知书", notified))
                    if "no_legal_review" not in plan.defects:
                        docs.append(("法制审核意见书", decided - dt.timedelta(days=1)))
                docs.append(("行政处罚决定书", decided))
            docs += [("送达回证", dates["served"]), ("结案报告", dates["closed"])]
        if "missing_document" in plan.defects:
            droppable = [d for d in docs if d[0] not in ("立案审批表", "结案报告")]
            for gone in rng.sample(droppable, min(len(droppable), rng.choice((1, 1, 2)))):
                docs.remove(gone)
        return [{"kind": kind, "date": day.isoformat()} for kind, day in docs]

    def _officers(self, plan: Plan) -> list[dict[str, Any]]:
        roster = self._roster(plan.unit)
        valid, lapsed = roster[:-1], roster[-1]
        count = 1 if "single_officer" in plan.defects else self._rng.choice((2, 2, 2, 3))
        chosen = self._rng.sample(valid, count)
        if "expired_cert" in plan.defects:
            chosen[-1] = lapsed
        return [{**o, "cert_valid_until": o["cert_valid_until"].isoformat()} for o in chosen]

    def _circumstances(self, plan: Plan) -> list[str]:
        rng = self._rng
        if plan.decision_kind == "no_penalty" or "minor_fined" in plan.defects:
            return ["minor", "first_offence", "corrected"]
        if plan.top_tier:
            found = rng.sample(cat.AGGRAVATING, rng.randint(1, 2))
            if "disproportion" in plan.defects:
                found += rng.sample(
                    ("first_offence", "corrected", "cooperative"), rng.randint(1, 2)
                )
            return found
        pool = [*cat.MITIGATING, "cooperative", "corrected"]
        return sorted(set(rng.sample(pool, rng.randint(0, 2))))

    def _case_events(self, plan: Plan, filing: str | None) -> None:
        rng = self._rng
        district = plan.district.code
        year = (self.start.astimezone(CST)).year
        case_id = self._unique(lambda: f"{plan.unit}-{year}-{rng.randrange(10**6):06d}")
        dates = self._case_dates(plan)
        circumstances = self._circumstances(plan)
        large = plan.fine >= cat.LARGE_FINE[plan.party_type]
        decided_at = office_time(rng, dates["decided"])
        if plan.source_order is not None and plan.source_order.resolved_at is not None:
            decided_at = max(decided_at, plan.source_order.resolved_at + dt.timedelta(hours=1))
        closed_at = max(office_time(rng, dates["closed"]), decided_at + dt.timedelta(hours=1))
        baseline = {
            "cgzf": "《上海市城管执法系统行政处罚裁量基准》",
            "scjg": "《上海市市场监督管理行政处罚裁量基准》",
            "sthj": "《上海市生态环境行政处罚裁量基准规定》",
            "zjw": "《上海市住房城乡建设管理行政处罚裁量基准》",
        }[plan.matter.unit_kind]
        closed = CaseClosed.model_validate(
            {
                "case_id": case_id,
                "unit": plan.unit,
                "district": district,
                "procedure": plan.procedure,
                "matter": plan.matter.name,
                "legal_provisions": [plan.provision.text],
                "party": {"type": plan.party_type, "name": plan.party_name, "id": plan.party_id},
                "dates": {k: v.isoformat() for k, v in dates.items()},
                "officers": self._officers(plan),
                "documents": self._documents(plan, dates),
                "decision": {"kind": plan.decision_kind, "fine": plan.fine, "confiscation": 0.0},
                "circumstances": circumstances,
                "discretion_baseline": None if "no_baseline" in plan.defects else baseline,
                "legal_review": large and "no_legal_review" not in plan.defects,
                "hearing": large and rng.random() < 0.15,
                "publicity": "no_publicity" not in plan.defects,
                "recording": "no_recording" not in plan.defects,
                "source_order_id": plan.source_order.order_id if plan.source_order else None,
            }
        )
        source = case_source(district)
        subject = f"case/{case_id}"
        if plan.decision_kind == "fine":
            decided = PenaltyDecided.model_validate(
                {
                    "case_id": case_id,
                    "unit": plan.unit,
                    "district": district,
                    "provision": plan.provision.text,
                    "party_type": plan.party_type,
                    "fine": plan.fine,
                    "decided_at": decided_at,
                    "circumstances": circumstances,
                    "party_name": plan.party_name,
                }
            )
            self._emit(decided_at, PENALTY_DECIDED, source, district, case_id, subject, decided)
            if filing in ("on_time", "late"):
                days = rng.randint(1, 9) if filing == "on_time" else rng.randint(12, 30)
                filed_at = max(
                    office_time(rng, decided_at.date() + dt.timedelta(days=days)),
                    decided_at + dt.timedelta(hours=1),
                )
                if filing == "on_time":  # a weekend push must not make it late
                    filed_at = min(filed_at, decided_at + dt.timedelta(days=9))
                filed = PenaltyFiled.model_validate(
                    {
                        "case_id": case_id,
                        "unit": plan.unit,
                        "filed_at": filed_at,
                        "documents": [
                            {"kind": kind, "date": filed_at.date().isoformat()}
                            for kind in cat.FILING_DOCUMENTS
                        ],
                    }
                )
                self._emit(filed_at, PENALTY_FILED, source, district, case_id, subject, filed)
        self._emit(closed_at, CASE_CLOSED, source, district, case_id, subject, closed)
