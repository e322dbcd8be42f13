"""Process entrypoint shared by the services: ``python -m services.<name>``."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn

from shared.service import Service


def serve(build: Callable[[], Service]) -> None:
    """Run one service: uvicorn serves its HTTP API; the lifespan runs its consumers.

    SIGINT/SIGTERM make uvicorn stop accepting requests, then the lifespan stops the
    consumers, timers and outbox relay before the process exits.
    """
    service = build()
    settings = service.settings
    uvicorn.run(
        service.http_app(),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
