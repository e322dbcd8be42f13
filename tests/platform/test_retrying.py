"""``shared.retrying``: one retry helper, and the loops that use it keep their semantics —
which errors are tried again, how many tries in all, and that the last error propagates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from fastapi import HTTPException
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure
from structlog.testing import capture_logs

from services.gateway.ingest import in_uow_retrying
from shared.api import Conflict, run_command
from shared.consumer import EventConsumer, Item, RecordOutcome
from shared.envelope import EventRejected
from shared.retrying import Retry, raced_insert, transient_transaction
from shared.settings import ServiceSettings
from tests.helpers import thing_records


def conflict() -> OperationFailure:
    return OperationFailure(
        "WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]}
    )


def test_the_policies_tell_retryable_errors_apart() -> None:
    assert transient_transaction(conflict())
    assert not transient_transaction(OperationFailure("bad", code=2))
    assert not transient_transaction(DuplicateKeyError("E11000"))
    assert raced_insert(DuplicateKeyError("E11000")) and raced_insert(conflict())
    assert not raced_insert(ValueError("no"))


class Flaky:
    """Work failing with the given errors in turn, then answering ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, *_: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_retry_reruns_what_it_is_told_and_lets_the_last_error_through() -> None:
    retry = Retry(transient_transaction, attempts=3, wait_initial=0.0)
    recovers = Flaky(conflict(), conflict())
    assert await retry(recovers) == "ok"
    assert recovers.calls == 3

    last = conflict()
    exhausted = Flaky(conflict(), conflict(), last, conflict())
    with pytest.raises(OperationFailure) as raised:
        await retry(exhausted)
    assert raised.value is last and exhausted.calls == 3

    other = Flaky(ValueError("not a conflict"))
    with pytest.raises(ValueError):
        await retry(other)
    assert other.calls == 1


async def test_retry_waits_double_up_to_the_cap_and_each_retry_is_logged() -> None:
    retry = Retry(ValueError, attempts=5, wait_initial=0.001, wait_max=0.004)
    assert retry.waits() == [0.001, 0.002, 0.004, 0.004]
    with capture_logs() as logs, pytest.raises(ValueError):
        await retry(Flaky(*[ValueError(str(n)) for n in range(5)]))
    retries = [e for e in logs if e["event"] == "retrying"]
    assert [e["retry"] for e in retries] == [1, 2, 3, 4]
    assert [e["wait_s"] for e in retries] == [0.001, 0.002, 0.004, 0.004]
    assert retry.times(1).waits() == []
    with pytest.raises(ValueError):
        Retry(ValueError, attempts=0, wait_initial=0.0)


class StubService:
    """``run_in_uow`` as the API and ingest see it: the work's errors come out of it."""

    def __init__(self, *errors: Exception) -> None:
        self.work = Flaky(*errors)

    async def run_in_uow(
        self, work: Callable[[Any], Awaitable[Any]], *, serial: bool = False, **_: Any
    ) -> Any:
        return await self.work(work)


async def test_run_command_reruns_a_lost_insert_race_then_answers_409() -> None:
    svc = StubService(DuplicateKeyError("E11000"))
    assert await run_command(svc, None, attempts=3) == "ok"  # type: ignore[arg-type]
    assert svc.work.calls == 2

    svc = StubService(*[DuplicateKeyError("E11000")] * 4)
    with pytest.raises(HTTPException) as raised:
        await run_command(svc, None, attempts=3)  # type: ignore[arg-type]
    assert raised.value.status_code == 409 and svc.work.calls == 3


async def test_run_command_does_not_rerun_refusals_or_conflicts_left_over() -> None:
    for error, status in [(Conflict("closed"), 409), (conflict(), 503)]:
        svc = StubService(error, error)
        with pytest.raises(HTTPException) as raised:
            await run_command(svc, None)  # type: ignore[arg-type]
        assert raised.value.status_code == status and svc.work.calls == 1
    svc = StubService(OperationFailure("bad", code=2))
    with pytest.raises(OperationFailure):
        await run_command(svc, None)  # type: ignore[arg-type]


async def test_ingest_reruns_duplicate_keys_and_conflicts_five_times_in_all() -> None:
    svc = StubService(DuplicateKeyError("E11000"), conflict())
    assert await in_uow_retrying(svc, None) == "ok"  # type: ignore[arg-type]
    assert svc.work.calls == 3
    svc = StubService(*[conflict()] * 6)
    with pytest.raises(OperationFailure):
        await in_uow_retrying(svc, None)  # type: ignore[arg-type]
    assert svc.work.calls == 5


# -- the consumer's single-record path ---------------------------------------------------


class Host:
    """A consumer's service: each retry of the record fails with the next error given (or
    succeeds); dead letters are kept."""

    def __init__(self, *errors: Exception, attempts: int = 3) -> None:
        self.settings = ServiceSettings(
            service_name="retry-test", handler_attempts=attempts, retry_backoff_s=0.0
        )
        self.source = "/jiandu/retry-test"
        self.errors = list(errors)
        self.runs = 0
        self.dead: list[dict[str, str]] = []

    async def run_in_uow(
        self, work: Callable[[Any], Awaitable[Any]], *, serial: bool = False, **_: Any
    ) -> Any:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return {0: RecordOutcome("processed", "e-1")}

    async def publish_raw(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        self.dead.append(headers)


def item_of(host: Host) -> Item:
    record = ConsumerRecord("t", 0, 7, 0, 0, b"k", b"{}", None, 1, 2, [("ce_id", b"e-1")])
    return Item(0, record, EventConsumer(host, "retry-test.t", "t", {}))  # type: ignore[arg-type]


async def test_a_record_alone_is_tried_handler_attempts_times_then_dead_lettered() -> None:
    host = Host(RuntimeError("second"), RuntimeError("third"), attempts=3)
    item = item_of(host)
    outcome = await item.consumer.alone(item, RuntimeError("first"))
    assert outcome.status == "dead_lettered"
    assert host.runs == 2, "the batch's failure was the first try"
    assert len(host.dead) == 1
    assert host.dead[0]["x-attempts"] == "3"
    assert host.dead[0]["x-exception"] == "RuntimeError: third"


async def test_a_record_alone_that_recovers_commits() -> None:
    host = Host(RuntimeError("second"), attempts=3)
    item = item_of(host)
    outcome = await item.consumer.alone(item, RuntimeError("first"))
    assert outcome.status == "processed" and host.runs == 2 and host.dead == []


async def test_one_attempt_means_no_retry() -> None:
    host = Host(attempts=1)
    item = item_of(host)
    outcome = await item.consumer.alone(item, RuntimeError("first"))
    assert outcome.status == "dead_lettered" and host.runs == 0


async def test_a_storage_outage_during_the_retries_propagates_and_nothing_is_dead_lettered() -> (
    None
):
    host = Host(AutoReconnect("away"), attempts=3)
    item = item_of(host)
    with pytest.raises(AutoReconnect):
        await item.consumer.alone(item, RuntimeError("first"))
    assert host.runs == 1 and host.dead == []


async def test_a_refusal_is_not_retried() -> None:
    host = Host(attempts=3)
    item = item_of(host)
    outcome = await item.consumer.alone(item, EventRejected("bad data"))
    assert outcome.status == "quarantined"
    assert host.runs == 1, "one transaction: the quarantine's"
    assert host.dead == []


# -- a batch that keeps losing write conflicts ---------------------------------------------


class ContendedHost:
    """A service where any transaction over more than ``fits`` records loses a write conflict
    (another replica keeps changing a document they share), as many times as it is tried."""

    def __init__(self, fits: int) -> None:
        self.settings = ServiceSettings(service_name="contended", retry_backoff_s=0.0)
        self.source = "/jiandu/contended"
        self.fits = fits
        self.tried: list[int] = []
        self.committed: list[list[str]] = []

    async def run_in_uow(
        self, work: Callable[[Any], Awaitable[Any]], *, serial: bool = False, **_: Any
    ) -> Any:
        return await work(self)  # the patched ``_apply`` below gets this host as its unit

    async def transaction(self, chunk: list[Item]) -> dict[int, RecordOutcome]:
        self.tried.append(len(chunk))
        if len(chunk) > self.fits:
            raise conflict()
        self.committed.append([i.event.id for i in chunk if i.event])
        return {i.index: RecordOutcome("processed", i.event.id if i.event else None) for i in chunk}

    async def publish_raw(self, *_: Any) -> None:
        raise AssertionError("nothing is dead-lettered for a conflict")


async def test_a_batch_that_keeps_losing_conflicts_commits_in_halves_in_kafka_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue #18: two replicas changing one shared document made a whole batch rerun until
    its retries ran out, again and again. The batch is applied in halves instead (each
    half holds the conflict for less time), every record once, in Kafka order."""
    import shared.consumer

    host = ContendedHost(fits=2)

    async def transaction(chunk: list[Item], unit: ContendedHost) -> dict[int, RecordOutcome]:
        return await unit.transaction(chunk)

    monkeypatch.setattr(shared.consumer, "_apply", transaction)

    async def handler(event: Any, uow: Any) -> None: ...

    consumer = EventConsumer(host, "contended.t", "t", {"test.thing": handler})  # type: ignore[arg-type]
    records = thing_records(7)
    items = [consumer.decode(i, r) for i, r in enumerate(records)]
    assert all(i.refusal is None for i in items), [i.refusal for i in items]
    outcomes = await shared.consumer.apply_batch(host, items)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == ["processed"] * 7
    assert [e for chunk in host.committed for e in chunk] == [f"e-{n}" for n in range(7)]
    assert max(len(chunk) for chunk in host.committed) <= 2
    assert host.tried[0] == 7, "the whole batch was tried first"
