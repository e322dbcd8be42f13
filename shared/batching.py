"""Failure isolation for work applied in batches.

A batch is applied in one transaction; when it fails, nothing of it was written. Instead of
giving up on every item, the batch is split in halves (bisected), in order, until the item
that fails is alone; only that one takes the single-item failure path (retries, quarantine,
dead letter); every other item commits. A batch therefore never loses, repeats or reorders
an effect, and one poison record costs about ``log2(n)`` extra transactions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pymongo.errors import ConnectionFailure

T = TypeVar("T")

NOT_ISOLATED: tuple[type[BaseException], ...] = (ConnectionFailure,)
"""Failures that are nobody's item's fault (the database is away): they propagate."""


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
    except NOT_ISOLATED:
        raise
    except Exception as exc:
        if len(items) == 1:
            await on_failure(items[0], exc)
            return
        middle = len(items) // 2
        await isolate_failures(items[:middle], apply, on_failure)
        await isolate_failures(items[middle:], apply, on_failure)
