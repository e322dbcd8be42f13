"""What ``make run`` does once everything is ready: supervise, and keep the console alive.

With ``demo`` on, a live feed of generated events (``devtools.demo``) flows into the ingest
topics, so an operator opening the console sees complaints being routed, cases reviewed and
notices sent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devtools.runner import Platform


def run_feed_forever(
    platform: Platform, *, demo: bool = True, rate_per_s: float = 2.0, poll_s: float = 1.0
) -> None:
    """Restart replicas that die and, with ``demo``, feed events, until interrupted."""
    from devtools.demo.feed import LiveFeedThread

    feed = (
        LiveFeedThread(
            platform.servers.kafka_bootstrap, seed=int(time.time()), rate_per_s=rate_per_s
        ).start()
        if demo
        else None
    )
    try:
        while True:
            if feed is not None and not feed.alive:
                raise RuntimeError(f"the demo feed stopped: {feed.error!r}")
            platform.supervise()
            time.sleep(poll_s)
    finally:
        if feed is not None:
            feed.stop()
