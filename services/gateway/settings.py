"""Settings of the gateway service (environment only, prefix ``JIANDU_``)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    http_port: int = 8000

    # -- access -------------------------------------------------------------------------
    # token signature, issuer, audience and pii_roles: shared.identity.IdentitySettings
    jwt_ttl_s: int = Field(default=8 * 3600, ge=60, description="Lifetime of issued tokens.")
    signing_master_key: str = Field(
        default="jiandu-dev-only-signing-master-key-0123456789",
        min_length=32,
        description="Derives each API key's HMAC signing secret, so none is stored at rest.",
    )
    bootstrap_users: str = Field(
        default="",
        description="Users created at start if missing: 'name:password:role[:district[:unit]]'"
        " separated by commas (demo and first-run convenience).",
    )

    # -- ingest -------------------------------------------------------------------------
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Request body limit.")
    max_batch_events: int = Field(default=500, ge=1)
    rate_per_s: float = Field(default=50.0, gt=0, description="Token refill per API key.")
    rate_burst: int = Field(default=200, ge=1, description="Bucket size per API key.")
    address_rate_per_s: float = Field(
        default=2.0,
        gt=0,
        description="Requests per second per client address, taken before authentication and"
        " given back when the request authenticates: it limits refused credentials.",
    )
    address_rate_burst: int = Field(
        default=30, ge=1, description="Bucket size (requests) per client address."
    )
    rate_limit_tracked: int = Field(
        default=10_000, ge=10, description="Buckets kept per limiter (least recently used go)."
    )
    unauthenticated_sample_per_hour: int = Field(
        default=20,
        ge=0,
        description="Unauthenticated refusals kept in quarantine (and announced) per hour and"
        " code; beyond that they are only counted in refusal_counts.",
    )

    # -- operations ---------------------------------------------------------------------
    peers: str = Field(
        default="", description="Services whose /readyz /v1/health calls: 'name=url,...'"
    )
    peer_timeout_s: float = Field(default=2.0, gt=0)
    jaeger_url: str = Field(default="http://127.0.0.1:16686", description="Trace links base.")
    stream_poll_s: float = Field(default=1.0, gt=0, description="Live feed polling interval.")
    stream_backlog: int = Field(default=20, ge=0, description="Recent events sent on connect.")
    export_max_rows: int = Field(
        default=50000, ge=1, le=1_000_000, description="Rows one CSV export may hold."
    )

    def peer_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.peers.split(","):
            name, sep, url = item.strip().partition("=")
            if sep and name.strip() and url.strip():
                out[name.strip()] = url.strip().rstrip("/")
        return out
