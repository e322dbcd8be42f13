"""Put demo events on Kafka: a finite load (as fast as possible or replayed at N× real time)
and the gentle endless live feed of ``make run``.

Events go straight to the ingest topics (``shared.topics.EXTERNAL_TYPE_TOPICS``) in
CloudEvents binary mode, keyed by their partition key, like the case system or the 12345
platform pushing onto Kafka directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devtools.demo.generator import DemoGenerator, DemoMix
from shared.envelope import Envelope
from shared.topics import EXTERNAL_TYPE_TOPICS
from shared.workcalendar import CST, is_working_day

log = logging.getLogger(__name__)

WINDOW = 1000
"""Sends in flight before waiting for acknowledgements (bounded memory, still batched)."""


def topic_for(event: Envelope, prefix: str = "") -> str:
    topic = EXTERNAL_TYPE_TOPICS.get(event.type)
    if topic is None:
        raise ValueError(f"{event.type} is not an external event type")
    return topic.qualified(prefix)


def _record(event: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    key, value, headers = event.to_kafka()
    return key, value, [(k, v.encode()) for k, v in headers.items()]


async def publish(
    events: Sequence[tuple[dt.datetime, Envelope]],
    bootstrap: str,
    prefix: str = "",
    speed: float | None = None,
    progress: bool = True,
) -> int:
    """Publish ``events`` in order; ``speed`` N replays their time gaps N× faster than real.

    Returns the number published once Kafka has acknowledged every one of them.
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5 if speed is None else 0
    )
    await producer.start()
    bar = Progress(
        TextColumn("[bold]demo[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=False,
    )
    label = "publishing" if speed is None else f"replaying at {speed:g}×"
    sent = 0
    try:
        with bar:
            task = bar.add_task(label, total=len(events))
            pending: list[asyncio.Future[object]] = []
            wall0 = time.monotonic()
            t0 = events[0][0] if events else None
            for when, event in events:
                if speed is not None and t0 is not None:
                    delay = wall0 + (when - t0).total_seconds() / speed - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                key, value, headers = _record(event)
                pending.append(
                    await producer.send(topic_for(event, prefix), value, key=key, headers=headers)
                )
                if len(pending) >= WINDOW or speed is not None:
                    await asyncio.gather(*pending)
                    bar.advance(task, len(pending))
                    sent += len(pending)
                    pending.clear()
            await asyncio.gather(*pending)
            bar.advance(task, len(pending))
            sent += len(pending)
    finally:
        await producer.stop()
    return sent


async def live_feed(
    bootstrap: str,
    seed: int,
    rate_per_s: float = 2.0,
    *,
    prefix: str = "",
    mix: DemoMix | None = None,
    lag_working_days: int = 2,
    case_lag: dt.timedelta = dt.timedelta(days=35),
    chunk_orders: int = 12,
    chunk_cases: int = 3,
    max_pending: int = 20_000,
) -> None:
    """Produce a gentle stream until cancelled: new work orders, their updates, cases.

    Each chunk is generated as if it started ``lag_working_days`` working days ago (so
    weekends and holidays do not hold the story back): a new work order's acknowledgement
    and returns follow within seconds. Case files are drawn ``case_lag`` back, so their
    decisions, filings and closures mostly have happened already. No event ever carries a
    time in the future: events dated later than now wait in memory (at most
    ``max_pending``) until their time comes. Kafka being unavailable only delays the feed;
    it never ends it.
    """
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be positive")
    base = mix or DemoMix()
    # ~4 events per order and ~2.5 per case: spread the chunk's creates over its air time
    chunk_seconds = (4 * chunk_orders + 2.5 * chunk_cases) / rate_per_s
    chunk_mix = base.model_copy(update={"span_days": chunk_seconds / 86_400})
    later: list[tuple[dt.datetime, int, Envelope]] = []
    order = itertools.count()
    producer = await _started_producer(bootstrap)
    try:
        for chunk in itertools.count():
            now = dt.datetime.now(dt.UTC)
            base_seed = seed * 1_000_003 + 2 * chunk
            orders = DemoGenerator(base_seed, working_days_ago(now, lag_working_days), chunk_mix)
            cases = DemoGenerator(base_seed + 1, now - case_lag, chunk_mix)
            batch = sorted(
                orders.events(chunk_orders, 0) + cases.events(0, chunk_cases),
                key=lambda pair: pair[0],
            )
            due: list[Envelope] = []
            for when, event in batch:
                if when <= now:
                    due.append(event)
                elif len(later) < max_pending:
                    heapq.heappush(later, (when, next(order), event))
            if not due:
                await asyncio.sleep(1.0 / rate_per_s)
            for event in due:
                while later and later[0][0] <= dt.datetime.now(dt.UTC):
                    await _send_retrying(producer, heapq.heappop(later)[2], prefix)
                await _send_retrying(producer, event, prefix)
                await asyncio.sleep(1.0 / rate_per_s)
    finally:
        await producer.stop()


def working_days_ago(now: dt.datetime, days: int) -> dt.datetime:
    """The same clock time ``days`` working days (工作日, holidays skipped) before ``now``."""
    when = now
    while days > 0:
        when -= dt.timedelta(days=1)
        if is_working_day(when.astimezone(CST).date()):
            days -= 1
    return when


async def _started_producer(bootstrap: str) -> AIOKafkaProducer:
    while True:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            await producer.start()
            return producer
        except Exception as exc:  # Kafka not up yet: wait, it is a demo feed
            log.warning("demo feed: Kafka unavailable (%s), retrying", exc)
            await producer.stop()
            await asyncio.sleep(2.0)


async def _send_retrying(producer: AIOKafkaProducer, event: Envelope, prefix: str) -> None:
    key, value, headers = _record(event)
    delay = 0.5
    while True:
        try:
            await producer.send_and_wait(topic_for(event, prefix), value, key=key, headers=headers)
            return
        except Exception as exc:
            log.warning("demo feed: send failed (%s), retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


class LiveFeedThread:
    """``live_feed`` on its own event loop in a daemon thread, for synchronous callers
    such as ``run_feed_forever``: ``feed = LiveFeedThread(...).start(); …; feed.stop()``."""

    def __init__(
        self, bootstrap: str, seed: int, rate_per_s: float = 2.0, prefix: str = ""
    ) -> None:
        self._args = (bootstrap, seed, rate_per_s)
        self._prefix = prefix
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-feed", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(live_feed(*self._args, prefix=self._prefix))
        self._ready.set()
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # surfaced to the owner through .error
            self.error = exc
        finally:
            loop.close()

    def start(self) -> LiveFeedThread:
        self._thread.start()
        self._ready.wait()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)


def count_by_type(events: Iterable[tuple[dt.datetime, Envelope]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, event in events:
        counts[event.type] = counts.get(event.type, 0) + 1
    return counts
