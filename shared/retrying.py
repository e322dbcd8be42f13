"""The one way work is run again after a failure: a :class:`Retry` policy (on stamina).

A policy says which errors are worth another try (``on``: an exception type, a tuple of
them, or a predicate), how many tries there are in all (``attempts``, the first included)
and how long to wait between them (``wait_initial``, doubled each time up to ``wait_max``,
plus up to ``wait_jitter`` at random). There is no time limit besides: a policy stops after
its tries only, and then the last error propagates as it was raised.

The runtime's policies are here, so one rule is written once:

* :func:`transient_transaction`: a transaction that lost a write conflict carries the
  ``TransientTransactionError`` label; running the whole work again may succeed.
* :func:`raced_insert`: that, or a duplicate key: a concurrent writer inserted the same
  entity first, and the work run again now sees it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import ParamSpec, TypeVar

import stamina
import structlog
from pymongo.errors import DuplicateKeyError, PyMongoError
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from shared.batching import ClaimHeld

T = TypeVar("T")
P = ParamSpec("P")
RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]

log = structlog.get_logger(__name__)


def transient_transaction(exc: Exception) -> bool:
    """A write conflict (or another error the server labels transient): run it again."""
    return isinstance(exc, PyMongoError) and exc.has_error_label("TransientTransactionError")


def raced_insert(exc: Exception) -> bool:
    """A concurrent writer got there first (duplicate key) or conflicted: run it again."""
    return isinstance(exc, DuplicateKeyError) or transient_transaction(exc)


@dataclass(frozen=True)
class Retry:
    """How to run a piece of async work again: on which errors, how often, how patiently."""

    on: RetryOn
    attempts: int
    """Tries in all, the first one included (1: no retry)."""
    wait_initial: float
    """Seconds before the first retry; doubled before each next one."""
    wait_max: float = math.inf
    wait_jitter: float = 0.0
    """Up to this many seconds more, at random (spreads replicas that collided apart)."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def times(self, attempts: int) -> Retry:
        """The same policy with another number of tries."""
        return replace(self, attempts=attempts)

    def waits(self) -> list[float]:
        """The waits between tries, jitter left out (what a test or a reader can check)."""
        return [
            min(self.wait_max, self.wait_initial * 2**n) for n in range(max(0, self.attempts - 1))
        ]

    async def __call__(
        self, work: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(*args, **kwargs)``, tried until it returns, raises an error this policy does
        not retry, or runs out of tries (the last error propagates)."""
        caller = stamina.AsyncRetryingCaller(
            attempts=self.attempts,
            timeout=None,
            wait_initial=self.wait_initial,
            wait_max=self.wait_max,
            wait_jitter=self.wait_jitter,
        )
        return await caller(self.on, work, *args, **kwargs)


TRANSACTION_CONFLICTS = Retry(
    transient_transaction, attempts=10, wait_initial=0.005, wait_max=1.0, wait_jitter=0.01
)
"""A unit of work whose transaction lost a write conflict (``Service.run_in_uow``; its
attempts come from ``JIANDU_TRANSACTION_ATTEMPTS``)."""

CLAIM_WAITS = Retry(ClaimHeld, attempts=60, wait_initial=0.01, wait_max=0.25, wait_jitter=0.05)
"""A batch whose claimed document another replica's batch holds (:class:`ClaimHeld`): wait
for that commit, about a batch's time, then run again; the whole batch, not halves (its
attempts come from ``JIANDU_BATCH_CLAIM_ATTEMPTS``)."""

DUPLICATE_KEYS = Retry(DuplicateKeyError, attempts=5, wait_initial=0.02, wait_max=0.1)
"""An API command that lost an insert race to a concurrent request (``shared.api``): run
again, it now sees the entity (write conflicts were retried by the unit of work already)."""

RACED_INSERTS = Retry(raced_insert, attempts=5, wait_initial=0.02, wait_max=0.1)
"""A command racing a concurrent one that inserts the same entity (the gateway's ingest)."""


def _log_retry(details: RetryDetails) -> None:
    log.info(
        "retrying",
        work=details.name,
        retry=details.retry_num,
        error=repr(details.caused_by),
        wait_s=round(details.wait_for, 3),
    )


# Every retry is logged once, at info (stamina's default warns, and counts in the
# process-wide Prometheus registry, which no service serves).
set_on_retry_hooks([_log_retry])
