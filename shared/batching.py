"""Failure isolation for work applied in batches.

A batch is applied in one transaction; when it fails, nothing of it was written. Instead of
giving up on every item, the batch is split in halves (bisected), in order, until the item
that fails is alone; only that one takes the single-item failure path (retries, quarantine,
dead letter); every other item commits. A batch therefore never loses, repeats or reorders
an effect, and one poison record costs about ``log2(n)`` extra transactions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError

T = TypeVar("T")


def keys_of(value: Any) -> list[Any]:
    """A prefetch function's answer as a list of ids (one id, several, or none)."""
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [v for v in value if v is not None]
    return [value]


class StorageUnavailable(Exception):
    """The database cannot take the work now; nobody's item is at fault. The caller gives
    the items back (Kafka: seek back and deliver them again) instead of dead-lettering."""


class ClaimHeld(StorageUnavailable):
    """Another transaction (a replica's batch) has written the document this unit claims
    (``shared.unit_of_work.UnitOfWork.claim``) and not committed yet: wait for it, then run
    the work again.

    Not the work's fault and not a reason to split a batch: every transaction of its kind
    writes that document, so halves would lose the same way.
    """


def is_storage_unavailable(exc: BaseException) -> bool:
    """The database is away, or still in conflict after the unit of work's own retries.

    A conflict that outlasts them is held by a transaction that will not end soon, e.g.
    one of a replica killed mid-transaction, whose locks the server keeps until it reaps
    the transaction (60 s on MongoDB and SecantusDB): waiting is the cure, not the DLT.
    """
    if isinstance(exc, StorageUnavailable | ConnectionFailure | ExecutionTimeout):
        return True
    return isinstance(exc, PyMongoError) and exc.has_error_label("TransientTransactionError")


async def isolate_failures(
    items: Sequence[T],
    apply: Callable[[list[T]], Awaitable[None]],
    on_failure: Callable[[T, Exception], Awaitable[None]],
) -> None:
    """``apply`` the items together; on failure bisect until the failing item is alone."""
    if not items:
        return
    try:
        await apply(list(items))
    except Exception as exc:
        if is_storage_unavailable(exc):
            raise
        if len(items) == 1:
            await on_failure(items[0], exc)
            return
        middle = len(items) // 2
        await isolate_failures(items[:middle], apply, on_failure)
        await isolate_failures(items[middle:], apply, on_failure)
