"""The gateway service: the runtime plus what its API keeps between requests.

One :class:`GatewayService` per process holds the ingest rate limits (per client address and
per API key), the ingest counters, the credential checks (with their cache of verified API
keys) and the writer of the hash-chained audit log. Routes reach it through
``services.gateway.deps.GatewayDep`` (``request.app.state.service``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from services.gateway import storage
from services.gateway.auth import Auth
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.settings import GatewaySettings
from shared.clock import Clock
from shared.identity import Caller
from shared.service import Service


class IngestLimits:
    """Token buckets per client address (taken before authentication) and per API key."""

    def __init__(self, settings: GatewaySettings, service: Service) -> None:
        self.per_key = RateLimiter(
            settings.rate_per_s, settings.rate_burst, settings.rate_limit_tracked
        )
        self.per_address = RateLimiter(
            settings.address_rate_per_s, settings.address_rate_burst, settings.rate_limit_tracked
        )
        self.rate_limited = Counter(
            "jiandu_ingest_rate_limited_total",
            "Ingest requests answered 429, by the limit that was hit",
            ["limit"],
            registry=service.registry,
        )
        self.unauthenticated = Counter(
            "jiandu_ingest_unauthenticated_total",
            "Ingest requests refused for missing or bad credentials (all counted, few kept)",
            ["code"],
            registry=service.registry,
        )


class GatewayService(Service):
    settings: GatewaySettings

    def __init__(self, settings: GatewaySettings, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock, title="Jiandu gateway (接入网关与运行监控台)")
        self.settings = settings
        self.auth = Auth(settings, lambda: self.db)
        self.limits = IngestLimits(settings, self)
        self._audit: storage.AuditLog | None = None

    @property
    def audit(self) -> storage.AuditLog:
        """The audit chain's writer (created on first use: the database exists once started)."""
        if self._audit is None:
            self._audit = storage.AuditLog(self.db)
        return self._audit

    async def record(
        self,
        actor: str,
        role: str,
        action: str,
        resource: str,
        ids: list[str] | None = None,
        *,
        district: str | None = None,
        personal_data: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one record to the audit chain: who did what to which resource, when."""
        await self.audit.append(
            at=self.clock.now(),
            actor=actor,
            role=role,
            action=action,
            resource=resource,
            resource_ids=ids,
            district=district,
            personal_data=personal_data,
            details=details,
        )

    async def record_by(
        self,
        caller: Caller,
        action: str,
        resource: str,
        ids: list[str] | None = None,
        **fields: Any,
    ) -> None:
        """:meth:`record` of an action the authenticated ``caller`` took."""
        principal = caller.principal
        await self.record(principal.sub, principal.role.value, action, resource, ids, **fields)
