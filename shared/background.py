"""Background loops of a service (outbox relay, timer wheel): waiting and stopping them.

``asyncio.wait_for`` in Python 3.11 can swallow a cancellation that races with the awaited
event being set; a loop that lost its cancellation then ran on and ``stop()`` waited for it
(measured: a stop took 95 s after timers fired while the relay was publishing).
``asyncio.timeout`` does not lose it, and :func:`stop_task` cancels again until the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def wait_for_wake(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` have passed; cancellable at any moment."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


async def stop_task(task: asyncio.Task[Any] | None, *, tries: int = 50) -> None:
    """Cancel ``task`` and wait for it to end, cancelling again if it swallowed one."""
    if task is None:
        return
    for _ in range(tries):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: a loop that failed while stopping is not an error here
