"""Client-side long-poll for Kafka fetches on a broker that answers empty fetches at once.

A service turns it on with ``JIANDU_KAFKA_FETCH_WAIT_MS`` (the local runner sets it for
noida-db); on Apache Kafka the setting stays 0 and nothing is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

_fetch_wait_s: float = 0.0


def emulate_fetch_wait(milliseconds: int) -> None:
    """Hold an empty Kafka fetch for ``milliseconds`` on the client side (process-wide).

    A Kafka broker holds a fetch that finds no records for up to ``fetch.max.wait.ms``;
    noida-db answers at once, so every idle aiokafka consumer spins at most of a CPU core
    (measured: 87% for one idle consumer). Waiting after an empty answer restores the
    long-poll pacing; records that arrive meanwhile wait at most that long. Not needed on
    Apache Kafka, where the setting stays 0.
    """
    global _fetch_wait_s
    from aiokafka.consumer.fetcher import Fetcher

    _fetch_wait_s = milliseconds / 1000
    if getattr(Fetcher._proc_fetch_request, "__jiandu_wait__", False):
        return
    original = Fetcher._proc_fetch_request

    async def proc_fetch_request(self: Any, assignment: Any, node_id: Any, request: Any) -> bool:
        loop = asyncio.get_running_loop()
        started = loop.time()
        woke: bool = await original(self, assignment, node_id, request)
        remaining = _fetch_wait_s - (loop.time() - started)
        if not woke and remaining > 0:
            # aiokafka cancels pending fetches on close and expects them to return quietly
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(remaining)
        return woke

    proc_fetch_request.__jiandu_wait__ = True  # type: ignore[attr-defined]
    Fetcher._proc_fetch_request = proc_fetch_request  # type: ignore[method-assign]
