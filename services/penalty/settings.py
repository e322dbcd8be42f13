"""Settings of the penalty service (environment only, prefix ``JIANDU_``)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class PenaltySettings(ServiceSettings):
    service_name: str = "penalty"
    http_port: int = 8003
