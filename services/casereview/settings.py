"""Settings of the casereview service (environment only, prefix ``JIANDU_``)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class CasereviewSettings(ServiceSettings):
    service_name: str = "casereview"
    http_port: int = 8002
