"""The delivery worker: sends pending deliveries after their notice has committed.

Each replica runs ``delivery_concurrency`` loops. A loop claims one due delivery by lease
(``find_one_and_update``: only one replica can hold it), sends it with no transaction open,
then records the outcome in a transaction that only succeeds while the claim still holds.
Failures are retried with exponential backoff up to ``delivery_attempts`` per channel; then
the channel is ``failed`` and ``jiandu.notify.notice.failed`` announces it.

Backoff and leases run on the wall clock: they are about transports, not business time,
so a test's ManualClock (which drives 签收 deadlines) does not freeze retries.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from datetime import timedelta

import structlog
from prometheus_client import Counter

from services.notify import storage
from services.notify.channels import DeliveryError, Outgoing, Transports
from services.notify.domain.aggregates import Delivery, Notice, Outcome
from services.notify.domain.notice import backoff_s, cn_datetime
from services.notify.handlers import NotifyWorkflow, wall_now
from services.notify.settings import NotifySettings
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
    """Claims and sends deliveries for one replica."""

    def __init__(
        self, settings: NotifySettings, workflow: NotifyWorkflow, transports: Transports
    ) -> None:
        self.settings = settings
        self.workflow = workflow
        self.transports = transports
        self._service: Service | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._attempts: Counter | None = None
        self.sent = 0

    @property
    def service(self) -> Service:
        if self._service is None:
            raise RuntimeError("delivery worker is not started")
        return self._service

    async def start(self, service: Service) -> None:
        self._service = service
        if self._attempts is None:
            self._attempts = Counter(
                "jiandu_notify_delivery_attempts",
                "Delivery attempts by channel and outcome (sent / retry / failed)",
                ["channel", "outcome"],
                registry=service.registry,
            )
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"notify-delivery-{i}")
            for i in range(self.settings.delivery_concurrency)
        ]

    async def stop(self, service: Service) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.transports.close()

    def wake(self) -> None:
        """New work was committed: look now instead of at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                worked = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("delivery pass failed", error=repr(exc))
                worked = False
            if not worked:
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.delivery_poll_s)

    async def drain(self) -> int:
        """Deliver everything due now (operators, tests); returns how many were attempted."""
        n = 0
        while await self.step():
            n += 1
        return n

    async def step(self) -> bool:
        """Claim one due delivery and attempt it; False when nothing was due."""
        s = self.settings
        token = uuid.uuid4().hex
        delivery = await self.service.run_in_uow(
            lambda uow: storage.claim_delivery(
                uow,
                owner=self.service.instance,
                token=token,
                now=wall_now(),
                lease_s=s.delivery_lease_s,
            )
        )
        if delivery is None:
            return False
        attempts = delivery.attempts
        if attempts > s.delivery_attempts:
            # Earlier claims died mid-send: the attempts are used up without an answer.
            await self._record(delivery, token, "failed", "no outcome recorded within the attempts")
            return True
        notice = await storage.read_notice(self.service.db, delivery.notice_id)
        if notice is None:
            await self._record(delivery, token, "failed", "notice is missing")
            return True
        try:
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
            await self._record(delivery, token, "failed" if final else "retry", exc.reason)
            return True
        except Exception as exc:  # a bug or an unforeseen transport error: retry, bounded
            log.exception("delivery attempt crashed", delivery=delivery.id)
            final = attempts >= s.delivery_attempts
            await self._record(delivery, token, "failed" if final else "retry", repr(exc)[:500])
            return True
        self.sent += 1
        await self._record(delivery, token, "sent", None)
        return True

    async def _record(
        self, delivery: Delivery, token: str, outcome: Outcome, error: str | None
    ) -> None:
        s = self.settings
        retry_at = None
        if outcome == "retry":
            wait = backoff_s(delivery.attempts, s.delivery_backoff_s, s.delivery_backoff_max_s)
            retry_at = wall_now() + timedelta(seconds=wait)
        if self._attempts is not None:
            self._attempts.labels(delivery.channel.value, outcome).inc()
        recorded = await self.service.run_in_uow(
            lambda uow: self.workflow.settle(
                uow, delivery, token, outcome, error=error, retry_at=retry_at
            ),
        )
        if not recorded:
            log.warning("delivery claim lost before its outcome was recorded", delivery=delivery.id)
        elif outcome == "retry":
            # Nobody else will wake us for our own retry: sleep until it is due.
            asyncio.get_running_loop().call_later(
                max(0.0, (retry_at - wall_now()).total_seconds()) if retry_at else 0.0, self.wake
            )
