"""Every service of the platform, once: its name, the HTTP port of its first replica and the
module that runs it (``python -m <module>``). Read by the runner, the command line, the
AsyncAPI writer, the benchmark, the container health probe and the deploy tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    port: int
    """HTTP port of replica 0; replica r listens on port + 100·r."""
    settings: str
    """Its settings class, ``module:Class`` (imported only by tooling that needs it)."""

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def main(self) -> str:
        """The composition root: ``<main>.build()`` returns the service."""
        return f"{self.module}.main"

    def port_of(self, replica: int = 0, offset: int = 0) -> int:
        return self.port + offset + 100 * replica


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("gateway", 8000, "services.gateway.settings:GatewaySettings"),
        ServiceEntry("hotline", 8001, "services.hotline.settings:HotlineSettings"),
        ServiceEntry("casereview", 8002, "services.casereview.settings:CasereviewSettings"),
        ServiceEntry("penalty", 8003, "services.penalty.settings:PenaltySettings"),
        ServiceEntry("notify", 8004, "services.notify.settings:NotifySettings"),
        ServiceEntry("inspection", 8005, "services.inspection.settings:InspectionSettings"),
    )
}
SERVICE_NAMES: tuple[str, ...] = tuple(SERVICES)
