"""Settings of the gateway service (environment only, prefix ``JIANDU_``)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    http_port: int = 8000
