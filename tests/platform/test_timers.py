"""Durable timers: fire once across replicas, survive restarts, move with the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import ManualClock
from shared.mongo import Document
from shared.service import Service
from shared.settings import ServiceSettings
from shared.topics import CASEREVIEW_EVENTS
from shared.unit_of_work import UnitOfWork
from tests.helpers import KafkaTap

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
