"""The delivery worker: sends pending deliveries after their notice has committed.

Each replica runs one loop that works in batches, in the style of the timer wheel and the
outbox relay:

1. claim: the ids of up to ``delivery_batch`` due deliveries are read off the ``due`` index
   (a range read, outside any transaction), then ONE transaction claims those still
   claimable by lease (one ``update_many`` setting a fresh claim token, counting the
   attempt) and reads back the ones it got: only one replica can hold a delivery;
2. send: with no transaction open, the batch's notices are read with one ``$in`` and the
   deliveries sent concurrently, at most ``delivery_concurrency`` at a time. A send starts
   only while its claim has more than the longest transport timeout left (and is cut off
   when the claim runs out), so another replica can never be sending it too; one that could
   not start gives its claim back unused;
3. record: ONE transaction records every outcome (deliveries and notices read with one
   ``$in`` each, written with one command each, the events in one outbox document), each
   only while its claim still holds: one lost meanwhile (its lease ran out and another
   replica took it) is skipped, the rest record. A batch whose recording fails is split
   until the failing delivery is alone (``shared.batching``); that one keeps its claim
   until the lease runs out and is then tried again.

Failures are retried with exponential backoff up to ``delivery_attempts`` per channel; then
the channel is ``failed`` and ``jiandu.notify.notice.failed`` announces it.

A batch costs about a dozen MongoDB commands and two transactions however many deliveries it
holds, where claiming one by one took two transactions and some nine commands per delivery
(and each record transaction could conflict with the consumer's batch on the same notices).
A slow receiver holds its batch's outcomes until its send ends (at most the transport
timeout; the lease outlives it).

Backoff and leases run on the wall clock: they are about transports, not business time,
so a test's ManualClock (which drives 签收 deadlines) does not freeze retries.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter

from services.notify import storage
from services.notify.channels import DeliveryError, Outgoing, Transports
from services.notify.domain.aggregates import Delivery, Notice, Outcome
from services.notify.domain.notice import backoff_s, cn_datetime
from services.notify.handlers import NotifyWorkflow, wall_now
from services.notify.handlers.deliveries import Report
from services.notify.settings import NotifySettings
from shared.batching import isolate_failures
from shared.clock import utc
from shared.service import Service

log = structlog.get_logger(__name__)


def outgoing(delivery: Delivery, notice: Notice) -> Outgoing:
    ack = utc(notice.ack_deadline)
    return Outgoing(
        delivery_id=delivery.id,
        notice_id=notice.id,
        channel=delivery.channel,
        target=delivery.target,
        kind=notice.kind.value,
        doc_number=notice.doc_number,
        title=notice.title,
        heading=notice.heading,
        issuer_name=notice.issuer_name,
        recipient_unit=notice.recipient_unit,
        recipient_name=notice.recipient_name,
        ack_deadline=ack.isoformat(),
        ack_deadline_cn=cn_datetime(ack),
        deadline=utc(notice.deadline).isoformat() if notice.deadline else None,
        text=notice.text,
    )


class DeliveryWorker:
    """Claims, sends and records deliveries in batches for one replica."""

    def __init__(
        self, settings: NotifySettings, workflow: NotifyWorkflow, transports: Transports
    ) -> None:
        self.settings = settings
        self.workflow = workflow
        self.transports = transports
        self._service: Service | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._attempts: Counter | None = None
        self.sent = 0
        self.passes = 0
        """Claim passes run so far (each one a read of the ``due`` index)."""

    @property
    def service(self) -> Service:
        if self._service is None:
            raise RuntimeError("delivery worker is not started")
        return self._service

    def attach(self, service: Service) -> None:
        """Work for ``service`` without a loop of its own (:meth:`drain` runs passes)."""
        self._service = service
        if self._attempts is None:
            self._attempts = Counter(
                "jiandu_notify_delivery_attempts",
                "Delivery attempts by channel and outcome (sent / retry / failed)",
                ["channel", "outcome"],
                registry=service.registry,
            )

    async def start(self, service: Service) -> None:
        self.attach(service)
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="notify-delivery")

    async def stop(self, service: Service) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None
        await self.transports.close()

    def wake(self) -> None:
        """New work was committed: look now instead of at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # a wake during the pass makes the wait below return at once
            try:
                claimed = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("delivery pass failed", error=repr(exc))
                claimed = 0
            if claimed:
                continue  # more may have come due while this batch was sending
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.delivery_poll_s)

    async def drain(self) -> int:
        """Deliver everything due now (operators, tests); returns how many were attempted."""
        n = 0
        while claimed := await self.step():
            n += claimed
        return n

    async def step(self) -> int:
        """Claim a batch of due deliveries, send them, record their outcomes; returns how
        many were claimed (0 when nothing was due)."""
        s = self.settings
        service = self.service
        self.passes += 1
        ids = await storage.due_delivery_ids(service.db, wall_now(), s.delivery_batch)
        if not ids:
            return 0
        token = uuid.uuid4().hex
        claimed: list[Delivery] = await service.run_in_uow(
            lambda uow: storage.claim_deliveries(
                uow,
                ids,
                owner=service.instance,
                token=token,
                now=wall_now(),
                lease_s=s.delivery_lease_s,
            ),
            serial=True,  # a background writer: takes turns with the consumer's batches
        )
        if not claimed:
            return 0
        notices = await storage.read_notices(service.db, [d.notice_id for d in claimed])
        gate = asyncio.Semaphore(s.delivery_concurrency)

        async def attempt(delivery: Delivery) -> Report:
            async with gate:
                return await self._attempt(delivery, notices.get(delivery.notice_id))

        reports = await asyncio.gather(*(attempt(d) for d in claimed))
        await self._record(token, reports)
        return len(claimed)

    async def _attempt(self, delivery: Delivery, notice: Notice | None) -> Report:
        """Send one claimed delivery (no transaction open); what to record of it."""
        s = self.settings
        attempts = delivery.attempts
        if attempts > s.delivery_attempts:
            # Earlier claims died mid-send: the attempts are used up without an answer.
            return self._report(delivery, "failed", "no outcome recorded within the attempts")
        if notice is None:
            return self._report(delivery, "failed", "notice is missing")
        left = _seconds_left(delivery.claim_until)
        if left <= max(s.smtp_timeout_s, s.http_timeout_s):
            # Sends queued behind slow ones: too little of the lease is left to start this
            # one safely (another replica may claim it once the lease runs out).
            return Report(delivery, None)
        try:
            async with asyncio.timeout(left):  # never sending once the claim has run out
                await self.transports.send(outgoing(delivery, notice))
        except DeliveryError as exc:
            final = exc.permanent or attempts >= s.delivery_attempts
            log.warning(
                "delivery attempt failed",
                delivery=delivery.id,
                attempt=attempts,
                permanent=exc.permanent,
                error=exc.reason,
            )
            return self._report(delivery, "failed" if final else "retry", exc.reason)
        except Exception as exc:  # a bug or an unforeseen transport error: retry, bounded
            log.exception("delivery attempt crashed", delivery=delivery.id)
            final = attempts >= s.delivery_attempts
            return self._report(delivery, "failed" if final else "retry", repr(exc)[:500])
        self.sent += 1
        return self._report(delivery, "sent", None)

    def _report(self, delivery: Delivery, outcome: Outcome, error: str | None) -> Report:
        s = self.settings
        retry_at = None
        if outcome == "retry":
            wait = backoff_s(delivery.attempts, s.delivery_backoff_s, s.delivery_backoff_max_s)
            retry_at = wall_now() + timedelta(seconds=wait)
        if self._attempts is not None:
            self._attempts.labels(delivery.channel.value, outcome).inc()
        return Report(delivery, outcome, error, retry_at)

    async def _record(self, token: str, reports: list[Report]) -> None:
        """Record the batch's outcomes in one transaction (split only around a failure)."""

        async def record(chunk: list[Report]) -> None:
            recorded = await self.service.run_in_uow(
                lambda uow: self.workflow.settle_batch(uow, token, chunk), serial=True
            )
            done = {r.delivery.id for r in recorded}
            for r in chunk:
                if r.delivery.id not in done:
                    log.warning(
                        "delivery claim lost before its outcome was recorded",
                        delivery=r.delivery.id,
                    )
            retries = [r.retry_at for r in recorded if r.outcome == "retry" and r.retry_at]
            if any(r.outcome is None for r in recorded):
                retries.append(wall_now())  # claims given back unused: due again at once
            if retries:
                # Nobody else will wake us for our own retries: sleep until the first is due.
                due = min(retries)
                asyncio.get_running_loop().call_later(
                    max(0.0, (due - wall_now()).total_seconds()), self.wake
                )

        async def failed(report: Report, exc: Exception) -> None:
            # As before batching: the claim stays until its lease runs out, then it is retried.
            log.warning(
                "delivery outcome not recorded", delivery=report.delivery.id, error=repr(exc)
            )

        await isolate_failures(reports, record, failed)


def _seconds_left(until: datetime | None) -> float:
    """Seconds until a claim's lease runs out (0 when it has no end: never ours)."""
    if until is None:
        return 0.0
    return (utc(until) - wall_now()).total_seconds()
