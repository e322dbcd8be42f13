"""How a service reads Kafka: one batch subscriber per group of topics, its options, the
tolerant parsing and decoding that let the consumer judge every record, and batch metrics.

``Service`` owns one :class:`Subscriptions`; ``Service.subscribe_batches`` and
``Service.subscriber_options`` hand over to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain
from typing import Any, ClassVar, Protocol

import structlog
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from prometheus_client import CollectorRegistry, Histogram

from shared.batching import is_storage_unavailable
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

Records = tuple[ConsumerRecord[bytes, bytes], ...]
BatchApply = Callable[[Records], Awaitable[Any]]


async def tolerant_parser(
    records: Records,
    original: Callable[[Records], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream's batch parser, made to accept header values that are not UTF-8.

    It decodes every header value as UTF-8 before any handler runs, so one bad header would
    fail on every redelivery and hold the partition. The handler still gets the records as
    they came (``raw_message``) and quarantines the bad one with its reason.
    """
    try:
        return await original(records)
    except UnicodeDecodeError:
        readable = tuple(
            dataclasses.replace(
                r, headers=[(k, v.decode("utf-8", "replace").encode()) for k, v in r.headers or ()]
            )
            for r in records
        )
        message = await original(readable)
        message.raw_message = records
        return message


async def raw_body(msg: StreamMessage[Any]) -> Any:
    """Hand the records over undecoded: the consumer decodes and judges them.

    FastStream's default decoder parses a JSON body by its content type before any handler
    runs; a body that is not JSON would then fail on every redelivery and hold the partition.
    """
    return msg.body


class Fetches(Protocol):
    """What :func:`gather_batch` needs of a Kafka consumer (aiokafka's ``getmany``)."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]: ...


async def gather_batch(
    consumer: Fetches, *, wait_ms: int, linger_ms: int, enough: int, max_records: int | None
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """What Kafka has ready (waiting up to ``wait_ms`` for a first record); if that is fewer
    than ``enough`` records, whatever else comes within ``linger_ms`` of it, until there are
    ``enough``; never more than ``max_records`` (None: no bound); each partition's records in
    their order.

    A batch costs about the same few commands and milliseconds of CPU whether it holds one
    record or fifty. At a moderate rate a consumer that takes what is there sees one or two
    records a batch and pays that cost for each, so the services saturate their CPU at a
    fraction of what they do with a backlog, and every record then waits in queues. A
    short linger turns those into fewer, larger batches; a consumer that already finds
    ``enough`` waiting goes at once (a broker's ``fetch.min.bytes`` and
    ``fetch.max.wait.ms``, taken on the consumer side).
    """
    loop = asyncio.get_running_loop()
    got = await consumer.getmany(timeout_ms=wait_ms, max_records=max_records)
    batch = {tp: list(records) for tp, records in got.items()}
    count = sum(len(records) for records in batch.values())
    if not count or linger_ms <= 0:
        return batch
    deadline = loop.time() + linger_ms / 1000
    while count < (enough if max_records is None else min(enough, max_records)):
        remaining_ms = int((deadline - loop.time()) * 1000)
        if remaining_ms <= 0:
            break
        room = None if max_records is None else max_records - count
        more = await consumer.getmany(timeout_ms=remaining_ms, max_records=room)
        for tp, records in more.items():
            batch.setdefault(tp, []).extend(records)
            count += len(records)
    return batch


class LingeringBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber polling through :func:`gather_batch`.

    A subscriber becomes one by :func:`linger` (FastStream builds its subscribers itself
    and offers no hook for how they poll); a subclass per linger, since the slots of
    FastStream's class leave no room for another attribute.
    """

    __slots__ = ()
    linger_ms: ClassVar[int] = 0
    enough: ClassVar[int] = 1

    async def get_msg(self, consumer: Any) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        batch = await gather_batch(
            consumer,
            wait_ms=self.batch_timeout_ms,
            linger_ms=self.linger_ms,
            enough=self.enough,
            max_records=self.max_records,
        )
        if not batch:
            return ()
        return tuple(chain(*batch.values()))


_lingering: dict[tuple[int, int], type[LingeringBatchSubscriber]] = {}


def linger(subscriber: Any, linger_ms: int, enough: int) -> None:
    """Make FastStream's batch ``subscriber`` linger up to ``linger_ms`` for more records
    while it has fewer than ``enough``."""
    if linger_ms <= 0 or enough <= 1 or not isinstance(subscriber, BatchSubscriber):
        return
    cls = _lingering.get((linger_ms, enough))
    if cls is None:
        cls = _lingering[linger_ms, enough] = type(
            f"LingeringBatchSubscriber{linger_ms}ms{enough}",
            (LingeringBatchSubscriber,),
            {"__slots__": (), "linger_ms": linger_ms, "enough": enough},
        )
    subscriber.__class__ = cls


class Subscriptions:
    """The Kafka subscribers of one service replica, with their batch metrics."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: ServiceSettings,
        instance: str,
        registry: CollectorRegistry,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.instance = instance
        self.batch_records = Histogram(
            "jiandu_batch_records",
            "Records per polled Kafka batch",
            ["consumer"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "jiandu_batch_seconds",
            "Time to apply one polled batch (its transaction, bisections and retries)",
            ["consumer"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )

    def subscribe_batches(
        self,
        topics: Sequence[str],
        apply: BatchApply,
        *,
        consumer_name: str,
        title: str,
        description: str,
    ) -> None:
        """One Kafka subscriber handing ``apply`` each polled batch of ``topics``."""
        backoff = self.settings.retry_backoff_s * 4
        sizes = self.batch_records.labels(consumer_name)
        durations = self.batch_seconds.labels(consumer_name)

        async def on_batch(msg: KafkaMessage) -> None:
            records: Records = msg.raw_message  # type: ignore[assignment]
            sizes.observe(len(records))
            try:
                with durations.time():
                    await apply(records)
            except Exception as exc:
                if is_storage_unavailable(exc):
                    # Not the records' fault: back off, then FastStream seeks every
                    # partition of the batch back and they come again.
                    log.warning("batch given back", consumer=consumer_name, error=repr(exc))
                    await asyncio.sleep(backoff)
                raise

        on_batch.__name__ = "on_" + re.sub(r"\W", "_", consumer_name)
        subscriber = self.broker.subscriber(
            *topics, **self.options(consumer_name), title=title, description=description
        )
        subscriber(on_batch)
        linger(subscriber, self.settings.batch_linger_ms, self.settings.batch_linger_records)

    def options(self, consumer_name: str) -> dict[str, Any]:
        """Keyword arguments every Kafka subscriber of this service takes.

        Records come in batches (what Kafka has ready, up to ``batch_max_records``), applied
        in one transaction. Offsets are committed once per batch, only after the handler
        returned (``NACK_ON_ERROR``: an error seeks every partition of the batch back), so a
        crash re-delivers rather than loses; handlers are idempotent.
        """
        s = self.settings
        return {
            "batch": True,
            "max_records": s.batch_max_records,
            "batch_timeout_ms": s.batch_max_wait_ms,
            "group_id": s.group_id,
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": s.session_timeout_ms,
            "heartbeat_interval_ms": max(1000, s.session_timeout_ms // 5),
            "group_instance_id": self.group_instance_id(consumer_name),
            "parser": tolerant_parser,
            "decoder": raw_body,
        }

    def group_instance_id(self, consumer_name: str) -> str | None:
        """Static group membership, one id per consumer of this replica.

        Besides sparing a rebalance on every restart, it is what lets a SIGKILLed replica
        come back on noida-db, which never expires a dead dynamic member (the group would
        wait for it forever); on Apache Kafka the id expires after the session timeout.
        """
        if not self.settings.kafka_static_membership:
            return None
        return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{self.instance}.{consumer_name}")[:249]
