"""Delivery outcomes and resends (送达): what the delivery worker reports, and sending again.

The worker reports a whole claimed batch at once (:meth:`DeliveryOutcomes.settle_batch`, one
transaction: its deliveries and notices read with one ``$in`` each, written with one command
each). Each outcome is recorded only while the worker's claim on its delivery still holds
(another replica may own it by now); one whose claim was lost is skipped, the rest record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.notify import storage
from services.notify.domain.aggregates import ChannelState, Delivery, Outcome
from services.notify.domain.notice import Channel
from services.notify.handlers.issuing import NoticeIssuer, wall_now
from shared.api import Conflict, NotFound
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Report:
    """What the worker reports of one delivery it claimed: the outcome of its attempt, or
    ``None`` when it did not start sending (too little of the lease was left), and the claim
    goes back unused."""

    delivery: Delivery
    outcome: Outcome | None
    error: str | None = None
    retry_at: dt.datetime | None = None


class DeliveryOutcomes(NoticeIssuer):
    """Records delivery attempts on the notice; queues a notice again on request."""

    async def settle_batch(
        self, uow: UnitOfWork, token: str, reports: Sequence[Report]
    ) -> list[Report]:
        """Record a claimed batch's reports in one unit (its deliveries and notices loaded
        with one ``$in`` each); returns those recorded: a report whose claim was lost is
        skipped, as :meth:`settle` skips it."""
        await storage.deliveries(uow).load(r.delivery.id for r in reports)
        await storage.notices(uow).load(r.delivery.notice_id for r in reports)
        recorded: list[Report] = []
        for r in reports:
            if r.outcome is None:
                done = await self.give_back(uow, r.delivery, token)
            else:
                done = await self.settle(
                    uow, r.delivery, token, r.outcome, error=r.error, retry_at=r.retry_at
                )
            if done:
                recorded.append(r)
        return recorded

    async def give_back(self, uow: UnitOfWork, delivery: Delivery, token: str) -> bool:
        """Release a claim whose send never started; False when it was lost already."""
        jobs = storage.deliveries(uow)
        job = await jobs.get(delivery.id)
        if job is None or not job.held_by(token):
            return False
        job.give_back()
        jobs.put(job)
        return True

    async def settle(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        token: str,
        outcome: Outcome,
        *,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
    ) -> bool:
        """Record one attempt; False when our claim was lost (another replica owns it now)."""
        now = uow.now()
        jobs = storage.deliveries(uow)
        job = await jobs.get(delivery.id)
        if job is None or not job.held_by(token):
            return False
        job.settle(outcome, at=now, wall=wall_now(), error=error, retry_at=retry_at)
        jobs.put(job)
        notices = storage.notices(uow)
        notice = await notices.get(delivery.notice_id)
        if notice is None:
            raise LookupError(delivery.notice_id)
        channel = delivery.channel.value
        attempts = delivery.attempts
        state = ChannelState.after(
            outcome, target=delivery.target, attempts=attempts, at=now, error=error
        )
        notice.set_channel(channel, state, now)
        notices.put(notice)
        if outcome != "retry":
            change: dict[str, Any] = {
                "channel": channel,
                "target": delivery.target,
                "attempts": attempts,
            }
            if error:
                change["error"] = error
            await self.emit(
                uow, "sent" if outcome == "sent" else "failed", notice, {**change, "at": now}
            )
        return True

    async def resend(
        self, uow: UnitOfWork, nid: str, channels: list[Channel] | None
    ) -> list[Delivery]:
        """Queue the notice again on some (default: every external) channel."""
        notices = storage.notices(uow)
        notice = await notices.get(nid)
        if notice is None:
            raise NotFound(f"notice {nid} does not exist")
        recipient = self.recipient(notice.recipient_unit)
        wanted = channels or notice.external_channels()
        if not wanted:
            raise Conflict(f"notice {nid} has no external channel; the inbox always holds it")
        now = uow.now()
        jobs = storage.deliveries(uow)
        queued: list[Delivery] = []
        for channel in dict.fromkeys(wanted):
            if channel is Channel.INBOX:
                raise Conflict("the inbox always holds the notice; nothing to resend")
            if channel.value not in notice.channels:
                raise Conflict(f"{recipient.unit} has no {channel.value} channel")
            current = await jobs.get(storage.delivery_id(nid, channel.value))
            if current is None:
                state, job = self.plan_delivery(nid, recipient, channel)
                if job is None and channels is None:
                    continue  # resending "everything": a channel that cannot deliver stays as is
                if job is None:
                    raise Conflict(
                        f"{channel.value} cannot deliver to {recipient.unit}: {state.reason}"
                    )
                storage.add_deliveries(uow, [job])
                queued.append(job)
            else:
                if current.being_attempted(wall_now()):
                    raise Conflict(
                        f"{channel.value} delivery of {nid} is being attempted right now"
                    )
                current.requeue(at=now, wall=wall_now())
                jobs.put(current)
                state = ChannelState.queued(current.target)
                queued.append(current)
            notice.channels[channel.value] = state
        if not queued:
            raise Conflict(f"no channel of notice {nid} can deliver in this deployment")
        notice.touch(now)
        notices.put(notice)
        return queued
