"""Client-side long-poll for Kafka fetches on a broker that answers empty fetches at once.

A service turns it on with ``JIANDU_KAFKA_FETCH_WAIT_MS`` (the local runner sets it for
noida-db); on Apache Kafka the setting stays 0 and nothing is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass
class FetchWait:
    """How long a consumer waits after an empty fetch: short while records flow, longer
    with each empty answer in a row, up to ``longest_s`` (back to ``shortest_s`` as soon
    as a fetch brings records).

    A fixed wait of ``longest_s`` put up to that long on every record that found its
    consumer idle, at every hop of the pipeline (half of it on average); while records
    come every few milliseconds the wait stays near ``shortest_s``, and an idle consumer
    still polls only about every ``longest_s`` after a few empty answers.
    """

    shortest_s: float
    longest_s: float
    _next_s: float = 0.0

    def after(self, brought_records: bool) -> float:
        """Seconds to wait after a fetch (counted from when it was sent)."""
        if brought_records:
            self._next_s = 0.0
            return 0.0
        wait = min(self.longest_s, max(self.shortest_s, self._next_s))
        self._next_s = wait * 2
        return wait


_shortest_s: float = 0.0
_longest_s: float = 0.0


def emulate_fetch_wait(milliseconds: int, shortest_ms: int | None = None) -> None:
    """Hold an empty Kafka fetch on the client side (process-wide): at first for
    ``shortest_ms``, doubled with each empty answer in a row, up to ``milliseconds``
    (see :class:`FetchWait`; ``shortest_ms`` None: always ``milliseconds``).

    A Kafka broker holds a fetch that finds no records for up to ``fetch.max.wait.ms``;
    noida-db answers at once, so every idle aiokafka consumer spins at most of a CPU core
    (measured: 87% for one idle consumer). Waiting after an empty answer restores the
    long-poll pacing. Not needed on Apache Kafka, where the setting stays 0.
    """
    global _shortest_s, _longest_s
    from aiokafka.consumer.fetcher import Fetcher

    _longest_s = milliseconds / 1000
    _shortest_s = min(_longest_s, (shortest_ms if shortest_ms is not None else milliseconds) / 1000)
    if getattr(Fetcher._proc_fetch_request, "__jiandu_wait__", False):
        return
    original = Fetcher._proc_fetch_request

    async def proc_fetch_request(self: Any, assignment: Any, node_id: Any, request: Any) -> bool:
        waits: FetchWait | None = getattr(self, "_jiandu_fetch_wait", None)
        if waits is None or (waits.shortest_s, waits.longest_s) != (_shortest_s, _longest_s):
            waits = self._jiandu_fetch_wait = FetchWait(_shortest_s, _longest_s)
        loop = asyncio.get_running_loop()
        started = loop.time()
        woke: bool = await original(self, assignment, node_id, request)
        remaining = waits.after(woke) - (loop.time() - started)
        if remaining > 0:
            # aiokafka cancels pending fetches on close and expects them to return quietly
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(remaining)
        return woke

    proc_fetch_request.__jiandu_wait__ = True  # type: ignore[attr-defined]
    Fetcher._proc_fetch_request = proc_fetch_request  # type: ignore[method-assign]
