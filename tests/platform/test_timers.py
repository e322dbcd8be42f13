"""Durable timers: fire once across replicas, survive restarts, move with the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import ManualClock
from shared.mongo import Document
from shared.outbox import outbox_events
from shared.service import Service
from shared.settings import ServiceSettings
from shared.timers import TIMERS
from shared.topics import CASEREVIEW_EVENTS
from shared.unit_of_work import UnitOfWork
from tests.helpers import KafkaTap, eventually

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class AlarmSettings(ServiceSettings):
    service_name: str = "alarm"


def build_alarm(settings: AlarmSettings, clock: ManualClock) -> Service:
    service = Service(settings, clock=clock)

    async def ring(timer: Document, uow: UnitOfWork) -> None:
        rings = await uow.collection("rings")
        await rings.insert_one({"timer": timer["_id"], "by": service.instance}, session=uow.session)
        from shared.envelope import Envelope

        await uow.emit(
            Envelope(
                type="test.alarm.rang",
                source=service.source,
                district="310101",
                partitionkey=timer["_id"],
                data={"timer": timer["_id"]},
            ),
            CASEREVIEW_EVENTS,
        )

    service.on_timer("ring", ring)
    return service


async def _schedule(svc: Service, timer_id: str, due: datetime) -> None:
    async def work(uow: UnitOfWork) -> None:
        await uow.schedule(timer_id, "ring", due, {"why": "test"})

    await svc.run_in_uow(work)


async def test_due_timer_fires_once_across_two_replicas(
    settings_for: Callable[..., AlarmSettings], tap: Any
) -> None:
    clock = ManualClock(T0)
    a = build_alarm(settings_for(AlarmSettings, instance_id="a"), clock)
    b = build_alarm(settings_for(AlarmSettings, instance_id="b"), clock)
    out: KafkaTap = await tap(a.topic(CASEREVIEW_EVENTS))
    async with a.running(), b.running():
        for i in range(20):
            await _schedule(a, f"t-{i}", T0 + timedelta(minutes=i))
        assert await a.timers.tick() + await b.timers.tick() == 1  # type: ignore[union-attr]
        clock.advance(timedelta(hours=1))
        fired = await asyncio.gather(a.timers.tick(), b.timers.tick())  # type: ignore[union-attr]
        assert sum(fired) == 19
        rings = await a.db["rings"].find().to_list()
        await out.wait_for(lambda rs: len(rs) >= 20)
    assert sorted(r["timer"] for r in rings) == sorted(f"t-{i}" for i in range(20))
    assert len(out.records) == 20


async def test_timer_survives_restart_and_cancel_prevents_firing(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    clock = ManualClock(T0)
    settings = settings_for(AlarmSettings)
    async with build_alarm(settings, clock).running() as svc:
        await _schedule(svc, "keep", T0 + timedelta(days=1))
        await _schedule(svc, "drop", T0 + timedelta(days=1))

        async def cancel(uow: UnitOfWork) -> None:
            await uow.cancel("drop")

        await svc.run_in_uow(cancel)
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]
    clock.advance(timedelta(days=2))
    async with build_alarm(settings, clock).running() as svc:
        assert await svc.timers.tick() == 1  # type: ignore[union-attr]
        assert await svc.timers.tick() == 0  # type: ignore[union-attr]
        rings = await svc.db["rings"].find().to_list()
    assert [r["timer"] for r in rings] == ["keep"]


async def test_fired_timer_continues_the_trace_that_scheduled_it_and_links_the_wheels(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """Row 27: a timer's handler runs in a span of the scheduling trace (linked to the span
    the wheel fires in); a timer scheduled outside any trace starts its own."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    clock = ManualClock(T0)
    svc = build_alarm(settings_for(AlarmSettings), clock)
    svc.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = svc.tracer_provider.get_tracer("test")
    async with svc.running():
        with tracer.start_as_current_span("complaint") as origin:
            await _schedule(svc, "traced", T0)
        await _schedule(svc, "untraced", T0 + timedelta(seconds=1))
        clock.advance(timedelta(minutes=1))
        with tracer.start_as_current_span("wheel pass") as wheel:
            assert await svc.timers.tick() == 2  # type: ignore[union-attr]
        assert svc.relay is not None
        relay = svc.relay

        async def sent() -> bool:
            return await relay.pending() == 0

        await eventually(sent)  # stopping while the relay publishes stalls the stop (~95 s)
    spans = {
        s.attributes["jiandu.timer.id"]: s
        for s in exporter.get_finished_spans()
        if s.name == "timer ring" and s.attributes is not None
    }
    traced, untraced = spans["traced"], spans["untraced"]
    assert traced.context is not None and untraced.context is not None
    assert traced.context.trace_id == origin.get_span_context().trace_id
    assert traced.parent is not None
    assert traced.parent.span_id == origin.get_span_context().span_id
    assert [link.context.span_id for link in traced.links] == [wheel.get_span_context().span_id]
    assert untraced.context.trace_id not in {
        origin.get_span_context().trace_id,
        wheel.get_span_context().trace_id,
    }


async def test_the_sweep_leaves_a_timer_to_the_replica_that_just_scheduled_it(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """Every wheel fires at once the timers its own commits scheduled; the replica holding
    the sweep leaves those to it for ``timer_sweep_grace_s`` instead of firing the same
    timers side by side (each such conflict ran a whole batch again)."""
    clock = ManualClock(T0)
    a = build_alarm(settings_for(AlarmSettings, instance_id="a", timer_sweep_grace_s=600), clock)
    b = build_alarm(settings_for(AlarmSettings, instance_id="b", timer_sweep_grace_s=600), clock)
    async with a.running(), b.running():
        assert a.timers is not None and b.timers is not None
        assert await b.timers.tick() == 0  # b now holds the sweep
        await _schedule(a, "from-a", T0)
        assert await b.timers.tick() == 0, "scheduled by a a moment ago: left to a"
        assert await a.timers.tick() == 1
        rings = await a.db["rings"].find().to_list()
    assert [r["timer"] for r in rings] == ["from-a"]


async def test_between_sweeps_a_wheel_woken_by_its_own_commits_fires_only_its_own(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """After a sweep the holder knows when the nearest timer is due; until then (or its
    longest sleep) a pass that a commit of its own woke reads no other timer. One another
    replica scheduled meanwhile (and did not fire) is swept once that time has come."""
    clock = ManualClock(T0)
    quick = {"timer_max_sleep_s": 60, "timer_sweep_grace_s": 0}
    a = build_alarm(settings_for(AlarmSettings, instance_id="a", **quick), clock)
    b = build_alarm(settings_for(AlarmSettings, instance_id="b"), clock)
    async with a.running(), b.running():
        assert a.timers is not None and b.timers is not None
        await a.timers.tick()  # a holds the sweep ...
        await a.timers._sleep_s()  # ... and knows nothing is due for the next 60 s
        await _schedule(b, "from-b", T0)  # b is gone before it fires it
        b.timers._own.clear()
        clock.advance(timedelta(seconds=30))
        await _schedule(a, "from-a", clock.now())
        assert await a.timers.tick() == 1, "its own timer, not the sweep"
        clock.advance(timedelta(seconds=31))
        assert await a.timers.tick() == 1, "past the quiet time: the sweep takes b's"
        rings = await a.db["rings"].find().sort("timer").to_list()
    assert [(r["timer"], r["by"]) for r in rings] == [
        ("from-a", a.instance),
        ("from-b", a.instance),
    ]


async def test_the_sweeping_wheel_sleeps_while_a_due_timer_is_left_to_its_replica(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """A due timer another replica has just scheduled is left to it for the grace: the
    sweeping wheel does not wake again at once to look at it (it did, every pass, for the
    whole grace), but at the end of the grace or at its nearest other timer."""
    clock = ManualClock(T0)
    quick = {"timer_max_sleep_s": 60, "timer_sweep_grace_s": 30}
    a = build_alarm(settings_for(AlarmSettings, instance_id="a", **quick), clock)
    b = build_alarm(settings_for(AlarmSettings, instance_id="b", **quick), clock)
    async with a.running(), b.running():
        assert a.timers is not None and b.timers is not None
        await a.timers.tick()  # a holds the sweep
        await _schedule(b, "from-b", T0)
        await _schedule(b, "later", T0 + timedelta(seconds=45))
        assert await a.timers.tick() == 0, "left to b"
        assert 25 < await a.timers._sleep_s() <= 30, "until the grace ends, not at once"
        assert await b.timers.tick() == 1
        clock.advance(timedelta(seconds=31))
        await a.timers.tick()  # past the quiet time: sweeps, finds nothing due
        assert 13 < await a.timers._sleep_s() <= 14, "until b's next timer"


async def test_a_stopping_wheel_hands_over_what_it_scheduled_within_the_grace(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """A clean stop makes the timers its replica scheduled a moment ago anyone's at once:
    the sweep need not wait out the grace for them."""
    clock = ManualClock(T0)
    grace = {"timer_sweep_grace_s": 600}
    a = build_alarm(settings_for(AlarmSettings, instance_id="a", **grace), clock)
    b = build_alarm(settings_for(AlarmSettings, instance_id="b", **grace), clock)
    async with b.running():
        assert b.timers is not None
        async with a.running():
            await _schedule(a, "soon", T0 + timedelta(minutes=5))
            await _schedule(a, "later", T0 + timedelta(days=1))
            before = {t["_id"]: t["scheduled_by"] async for t in a.db["timers"].find()}
        after = {t["_id"]: t["scheduled_by"] async for t in b.db["timers"].find()}
        clock.advance(timedelta(minutes=5))
        fired_soon = await b.timers.tick()
    assert before == {"soon": a.instance, "later": a.instance}
    assert after == {"soon": None, "later": None}
    assert fired_soon == 1, "handed over: swept at once, not after the 600 s grace"


def test_only_timers_scheduled_within_the_grace_need_handing_over() -> None:
    """The sweep leaves a timer to its replica only while it was scheduled less than the
    grace ago (wall clock); older ones are anyone's already, however far their due time."""
    from collections import deque

    from shared.timers import forget_before, recently_scheduled

    at = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    second = timedelta(seconds=1)
    recent = deque([(at, ["t1", "t2"]), (at + second, ["t3"]), (at + 3 * second, ["t2"])])
    assert recently_scheduled(recent, at + second / 2) == ["t3", "t2"]
    forget_before(recent, at + second)
    assert [ids for _, ids in recent] == [["t2"]]
    assert recently_scheduled(recent, at + 3 * second) == []


async def test_cancels_of_a_unit_go_as_one_statement_and_create_nothing(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """A step that moves a deadline cancels two timers, one of which often never existed:
    one statement for all of a unit's cancels, which creates no timer."""
    clock = ManualClock(T0)
    async with build_alarm(settings_for(AlarmSettings), clock).running() as svc:
        for name in ("a", "b", "keep"):
            await _schedule(svc, name, T0 + timedelta(days=1))
        statements: list[int] = []

        async def cancel(uow: UnitOfWork) -> None:
            for name in ("a", "b", "never"):
                await uow.cancel(name)
            statements.append(len(uow._timer_models()))
            for name in ("a", "b", "never"):  # the models were taken: say it again
                await uow.cancel(name)

        await svc.run_in_uow(cancel)
        timers = {t["_id"]: t["status"] for t in await svc.db[TIMERS].find().to_list()}
    assert statements == [1]
    assert timers == {"a": "cancelled", "b": "cancelled", "keep": "pending"}


async def test_a_timer_its_handler_arms_again_stays_armed_and_counts_the_firing(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """The wheel's flip to ``fired`` is written at commit, before the handler's own timer
    writes: a handler that schedules its timer again (a reminder that repeats) leaves it
    pending, and the firing is counted."""
    clock = ManualClock(T0)
    svc = Service(settings_for(AlarmSettings), clock=clock)

    async def again(timer: Document, uow: UnitOfWork) -> None:
        await uow.schedule(timer["_id"], "again", clock.now() + timedelta(hours=1))

    svc.on_timer("again", again)

    async def arm(uow: UnitOfWork) -> None:
        await uow.schedule("reminder", "again", T0)

    async with svc.running():
        await svc.run_in_uow(arm)
        assert await svc.timers.tick() == 1  # type: ignore[union-attr]
        timer = await svc.db[TIMERS].find_one({"_id": "reminder"})
    assert timer is not None and timer["fired_count"] == 1
    assert timer["status"] == "pending"
    assert timer["next_at"].replace(tzinfo=UTC) == T0 + timedelta(hours=1)


# -- timers a unit schedules already due fire in that unit (JIANDU_TIMERS_FIRE_AT_COMMIT) -----


async def wheel_fired(svc: Service) -> bool:
    """The wheel (not a unit) fired one timer."""
    return svc.timers is not None and svc.timers.fired == 1


async def test_a_timer_scheduled_already_due_fires_in_the_unit_that_scheduled_it(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """A backlog or a replay schedules deadlines already past: the unit fires them itself,
    committed with its own writes, instead of a second transaction after the commit."""
    clock = ManualClock(T0)
    async with build_alarm(settings_for(AlarmSettings, timers_run=True), clock).running() as svc:

        async def late_work(uow: UnitOfWork) -> None:
            await uow.schedule("late", "ring", T0 - timedelta(hours=1))
            await uow.schedule("later", "ring", T0 + timedelta(days=1))
            await uow.schedule("cancelled", "ring", T0 - timedelta(hours=2))
            await uow.cancel("cancelled")

        await svc.run_in_uow(late_work)
        # nothing awaited: what the unit committed is there when it returns
        rings = [r["timer"] for r in await svc.db["rings"].find().to_list()]
        timers = {t["_id"]: t for t in await svc.db[TIMERS].find().to_list()}
        rang = await outbox_events(svc.db, type="test.alarm.rang")
        assert svc.timers is not None and svc.timers.fired == 0  # the wheel fired nothing
    assert rings == ["late"]
    assert [e["id"] for e in rang] and len(rang) == 1
    assert timers["late"]["status"] == "fired" and timers["late"]["fired_count"] == 1
    assert timers["late"]["fired_by"] == svc.instance
    assert timers["later"]["status"] == "pending" and timers["later"]["fired_count"] == 0
    assert "cancelled" not in timers


async def test_due_timers_a_fired_timer_schedules_fire_too_and_one_it_re_arms_stays_armed(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """办结超期 arms 超期通报, both past in a replay: one unit fires the chain; a handler that
    arms its own timer again leaves it pending with the firing counted (and not fired twice)."""
    clock = ManualClock(T0)
    svc = Service(settings_for(AlarmSettings, timers_run=True), clock=clock)
    order: list[str] = []

    async def overdue(timer: Document, uow: UnitOfWork) -> None:
        order.append(timer["_id"])
        await uow.schedule("escalate", "escalate", T0 - timedelta(minutes=1))

    async def escalate(timer: Document, uow: UnitOfWork) -> None:
        order.append(timer["_id"])
        await uow.schedule("escalate", "escalate", T0 - timedelta(minutes=1))  # due, re-armed
        await uow.schedule("repeat", "escalate", T0 + timedelta(hours=1))

    svc.on_timer("overdue", overdue)
    svc.on_timer("escalate", escalate)

    async def arm(uow: UnitOfWork) -> None:
        await uow.schedule("due", "overdue", T0 - timedelta(days=1))

    async with svc.running():
        await svc.run_in_uow(arm)
        timers = {t["_id"]: t for t in await svc.db[TIMERS].find().to_list()}
    assert order == ["due", "escalate"]  # each once, in the one unit
    assert timers["due"]["status"] == "fired" and timers["due"]["fired_count"] == 1
    assert timers["escalate"]["status"] == "pending"  # armed again by its own handler
    assert timers["escalate"]["fired_count"] == 1
    assert timers["repeat"]["status"] == "pending"


async def test_a_due_timer_that_fails_in_its_unit_is_left_to_the_wheel(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """Its failure is the timer's, not the work's: the unit commits again without firing it
    (its own writes once), and the wheel fires it with its bounded retries."""
    clock = ManualClock(T0)
    svc = Service(settings_for(AlarmSettings, timers_run=True), clock=clock)
    calls: list[str] = []

    async def flaky(timer: Document, uow: UnitOfWork) -> None:
        calls.append(timer["_id"])
        if len(calls) == 1:
            raise ValueError("first try fails")
        uow.documents("rings").put({"_id": timer["_id"], "rang": True})

    svc.on_timer("flaky", flaky)

    async def work(uow: UnitOfWork) -> None:
        uow.documents("things").put({"_id": "thing", "n": 1})
        await uow.schedule("flaky-1", "flaky", T0 - timedelta(hours=1))

    async with svc.running():
        await svc.run_in_uow(work)
        assert await svc.db["things"].count_documents({}) == 1
        await eventually(lambda: wheel_fired(svc))  # the wheel counts after its commit
        fired = await svc.db[TIMERS].find_one({"status": "fired"})
        rang = await svc.db["rings"].find().to_list()
    assert fired is not None and fired["_id"] == "flaky-1" and fired["fired_count"] == 1
    assert calls == ["flaky-1", "flaky-1"]
    assert rang == [{"_id": "flaky-1", "rang": True}]


async def test_without_fire_at_commit_the_wheel_fires_a_due_timer(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    clock = ManualClock(T0)
    settings = settings_for(AlarmSettings, timers_run=True, timers_fire_at_commit=False)
    async with build_alarm(settings, clock).running() as svc:
        await _schedule(svc, "late", T0 - timedelta(hours=1))
        await eventually(lambda: wheel_fired(svc))
        fired = await svc.db[TIMERS].find_one({"status": "fired"})
    assert fired is not None and fired["_id"] == "late"


async def test_a_due_timer_whose_writes_fail_at_commit_is_left_to_the_wheel(
    settings_for: Callable[..., AlarmSettings],
) -> None:
    """The timer's writes go with the unit's at commit: a write only the timer's handler made
    (a duplicate insert here) fails the unit, which then commits again without the timer."""
    clock = ManualClock(T0)
    svc = Service(settings_for(AlarmSettings, timers_run=True), clock=clock)
    calls: list[str] = []

    async def inserts(timer: Document, uow: UnitOfWork) -> None:
        calls.append(timer["_id"])
        if len(calls) == 1:  # a document that exists: the insert fails at commit
            uow.documents("rings").add({"_id": "taken"})
        else:
            uow.documents("rings").put({"_id": timer["_id"]})

    svc.on_timer("inserts", inserts)

    async def work(uow: UnitOfWork) -> None:
        uow.documents("things").put({"_id": "thing"})
        await uow.schedule("ins-1", "inserts", T0 - timedelta(hours=1))

    async with svc.running():
        await svc.db["rings"].insert_one({"_id": "taken"})
        await svc.run_in_uow(work)
        assert await svc.db["things"].count_documents({}) == 1
        fired = await eventually(lambda: svc.db[TIMERS].find_one({"status": "fired"}))
        rings = sorted(r["_id"] for r in await svc.db["rings"].find().to_list())
    assert fired["_id"] == "ins-1" and calls == ["ins-1", "ins-1"]
    assert rings == ["ins-1", "taken"]
