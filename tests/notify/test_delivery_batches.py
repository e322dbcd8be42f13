"""Throughput (issue #18): the delivery worker claims, sends and records deliveries in
batches (two transactions a batch, not two a delivery), and a delivery whose claim was lost
between its send and the batch's record is skipped, not recorded twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import monitoring

from services.notify.channels import Outgoing
from services.notify.delivery import DeliveryWorker
from services.notify.domain.aggregates import Delivery
from services.notify.domain.directory import load_directory
from services.notify.domain.notice import notice_id
from services.notify.handlers import NotifyWorkflow, wall_now
from services.notify.handlers.deliveries import Report
from services.notify.main import build
from services.notify.settings import NotifySettings
from services.notify.storage import claim_deliveries
from shared.clock import ManualClock
from shared.outbox import outbox_events
from shared.service import Service
from tests.helpers import eventually
from tests.notify.test_aggregates import delivery, notice
from tests.notify.test_service import START, Receiver, Settings, make_settings, request

pytestmark = pytest.mark.integration

STATE = ("deliveries", "notices")
SENT = "jiandu.notify.notice.sent"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


class StubTransports:
    """Records what it sends; runs ``during`` inside each send (a stand-in for a receiver)."""

    def __init__(self, during: Callable[[Outgoing], Awaitable[None]] | None = None) -> None:
        self.sent: list[str] = []
        self._during = during

    async def send(self, out: Outgoing) -> None:
        self.sent.append(out.delivery_id)
        if self._during is not None:
            await self._during(out)

    async def close(self) -> None:
        pass


def claimed_delivery(claim_until: dt.datetime) -> Delivery:
    return delivery(attempts=1, claim_token="tok", claimed_by="a", claim_until=claim_until)


async def idle_worker(svc: Service) -> DeliveryWorker:
    """The service's worker once its first pass (at start, nothing due) is over: with a
    long poll and nobody waking it, only the test's ``drain`` runs passes after that."""
    worker = svc.component(DeliveryWorker)

    async def first_pass_done() -> bool:
        return worker.passes >= 1

    await eventually(first_pass_done)
    return worker


async def issue(svc: Service, keys: list[str]) -> list[str]:
    """Notices to a unit whose only external channel here is the webhook: one delivery
    each, pending; returns the delivery ids."""
    workflow = svc.component(NotifyWorkflow)

    async def work(uow: Any) -> None:
        for key in keys:
            assert await workflow.issue(request(key), uow) is not None

    await svc.run_in_uow(work)
    return [f"{notice_id(key)}:webhook" for key in keys]


async def sent_events(svc: Service) -> Counter[str]:
    """``sent`` events in the outbox, by notice."""
    return Counter(e["key"].decode() for e in await outbox_events(svc.db, type=SENT))


async def test_a_batch_of_deliveries_takes_two_transactions_not_two_per_delivery(
    settings_for: Settings, receiver: Receiver
) -> None:
    settings = make_settings(
        settings_for, webhook_url_override=receiver.url("/hooks"), delivery_poll_s=3600
    )
    service = build(settings, clock=ManualClock(START))
    commands: Counter[str] = Counter()
    transactions = 0
    counting = False
    counter = service.mongo_commands
    count = counter.started

    def started(event: monitoring.CommandStartedEvent) -> None:
        nonlocal transactions
        target = event.command.get(event.command_name)
        if counting and target in STATE:
            commands[f"{event.command_name} {target}"] += 1
            if event.command.get("startTransaction"):
                transactions += 1
        count(event)

    counter.started = started  # type: ignore[method-assign]
    async with service.running() as svc:
        worker = await idle_worker(svc)
        ids = await issue(svc, [f"batch-{n}" for n in range(12)])
        counting = True
        attempted = await worker.drain()
        counting = False
        jobs = await svc.db["deliveries"].find({"_id": {"$in": ids}}).to_list()
        events = await sent_events(svc)

    assert attempted == 12
    assert sorted(r.headers["idempotency-key"] for r in receiver.at("/hooks")) == sorted(ids)
    assert {j["_id"]: j["status"] for j in jobs} == {i: "sent" for i in ids}
    assert all([h["outcome"] for h in j["history"]] == ["sent"] for j in jobs)
    assert set(events.values()) == {1} and len(events) == 12
    # one claim and one record transaction for the batch (one by one: 24 transactions);
    # about ten commands on the worker's collections (one by one: 6 a delivery, 72)
    assert transactions <= 3, commands
    assert sum(commands.values()) <= 12, commands


async def test_a_claim_lost_between_send_and_record_is_not_recorded_twice(
    settings_for: Settings,
) -> None:
    common: dict[str, Any] = {"webhook_url_override": "http://127.0.0.1:9/hooks"}
    settings_a = make_settings(settings_for, instance_id="notify-a", delivery_poll_s=3600, **common)
    settings_b = make_settings(settings_for, instance_id="notify-b", delivery_poll_s=3600, **common)
    clock = ManualClock(START)
    async with (
        build(settings_a, clock=clock).running() as a,
        build(settings_b, clock=clock).running() as b,
    ):
        worker_a, worker_b = await idle_worker(a), await idle_worker(b)
        lost, kept = await issue(a, ["lost-1", "kept-1"])
        taken_over: list[int] = []

        async def pause_past_the_lease(out: Outgoing) -> None:
            """A's send of ``lost`` outlasts its lease: B claims it, sends and records it."""
            if out.delivery_id != lost or taken_over:
                return
            await a.db["deliveries"].update_one(
                {"_id": lost}, {"$set": {"claim_until": dt.datetime.now(dt.UTC)}}
            )
            taken_over.append(await worker_b.drain())

        stub_a = StubTransports(pause_past_the_lease)
        stub_b = StubTransports()
        worker_a.transports = stub_a  # type: ignore[assignment]
        worker_b.transports = stub_b  # type: ignore[assignment]
        attempted = await worker_a.drain()
        jobs = {j["_id"]: j for j in await a.db["deliveries"].find({}).to_list()}
        notice = await a.db["notices"].find_one({"_id": notice_id("lost-1")})
        events = await sent_events(a)

    assert attempted == 2 and taken_over == [1]
    assert sorted(stub_a.sent) == sorted([lost, kept]) and stub_b.sent == [lost]
    # B recorded its attempt (the second); A's outcome for it was skipped, not added
    assert jobs[lost]["status"] == "sent" and jobs[lost]["attempts"] == 2
    assert [(h["attempt"], h["outcome"]) for h in jobs[lost]["history"]] == [(2, "sent")]
    assert jobs[lost]["claim_token"] is None
    # the rest of A's batch recorded as usual
    assert [(h["attempt"], h["outcome"]) for h in jobs[kept]["history"]] == [(1, "sent")]
    assert notice is not None and notice["channels"]["webhook"]["attempts"] == 2
    assert events == {notice_id("lost-1"): 1, notice_id("kept-1"): 1}


async def test_a_send_with_too_little_lease_left_is_not_started() -> None:
    """Sends queued behind slow ones: once less of the claim is left than a send may take,
    the delivery is not sent (another replica may claim it when the lease runs out)."""
    settings = NotifySettings(delivery_lease_s=60, smtp_timeout_s=10, http_timeout_s=10)
    stub = StubTransports()
    worker = DeliveryWorker(
        settings,
        NotifyWorkflow(settings, "/jiandu/notify", load_directory()),
        stub,  # type: ignore[arg-type]
    )
    now = dt.datetime.now(dt.UTC)
    late = claimed_delivery(claim_until=now + dt.timedelta(seconds=9))
    fresh = claimed_delivery(claim_until=now + dt.timedelta(seconds=59))
    late_report = await worker._attempt(late, notice())
    fresh_report = await worker._attempt(fresh, notice())
    assert late_report.outcome is None and fresh_report.outcome == "sent"
    assert stub.sent == [fresh.id]


async def test_a_claim_given_back_is_released_without_an_attempt_and_sent_next_pass(
    settings_for: Settings,
) -> None:
    settings = make_settings(
        settings_for, webhook_url_override="http://127.0.0.1:9/hooks", delivery_poll_s=3600
    )
    async with build(settings, clock=ManualClock(START)).running() as svc:
        worker = await idle_worker(svc)
        stub = StubTransports()
        worker.transports = stub  # type: ignore[assignment]
        (job_id,) = await issue(svc, ["back-1"])
        workflow = svc.component(NotifyWorkflow)
        (claimed,) = await svc.run_in_uow(
            lambda uow: claim_deliveries(
                uow, [job_id], owner="x", token="tok", now=wall_now(), lease_s=60
            )
        )
        recorded = await svc.run_in_uow(
            lambda uow: workflow.settle_batch(uow, "tok", [Report(claimed, None)])
        )
        released = await svc.db["deliveries"].find_one({"_id": job_id})
        attempted = await worker.drain()
        job = await svc.db["deliveries"].find_one({"_id": job_id})
        events = await sent_events(svc)
    assert claimed.attempts == 1 and len(recorded) == 1
    assert released is not None and released["attempts"] == 0
    assert released["claim_token"] is None and released["history"] == []
    assert attempted == 1 and stub.sent == [job_id]
    assert job is not None and job["status"] == "sent"
    assert [(h["attempt"], h["outcome"]) for h in job["history"]] == [(1, "sent")]
    assert events == {notice_id("back-1"): 1}
