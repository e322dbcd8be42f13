"""Settings of the hotline service (environment only, prefix ``JIANDU_``)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class HotlineSettings(ServiceSettings):
    service_name: str = "hotline"
    http_port: int = 8001
