"""The live demo feed of ``make run``: realistic events so the console is alive.

Until the demo generator (``jiandu demo``) lands this only keeps the platform running.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.runner import Platform


def run_feed_forever(platform: Platform, *, demo: bool = True) -> None:
    """Watch the service processes (and, with ``demo``, feed events) until interrupted."""
    while True:
        for sp in platform.processes:
            if sp.proc.poll() is not None:
                raise RuntimeError(f"{sp.name}-{sp.replica} exited with {sp.proc.returncode}")
        time.sleep(1.0)
