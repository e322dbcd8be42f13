"""Settings read only from the environment (12-factor); one subclass per service."""

from __future__ import annotations

import re

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    """What every service needs to reach Kafka, MongoDB and the tracing backend.

    Environment variables carry the ``JIANDU_`` prefix, e.g. ``JIANDU_KAFKA_BOOTSTRAP``.
    """

    model_config = SettingsConfigDict(env_prefix="JIANDU_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_uri: str = "mongodb://127.0.0.1:27017/?retryWrites=false"
    topic_prefix: str = Field(
        default="", description="Namespace for every topic name (isolates test runs)."
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP endpoint, e.g. http://otel-collector:4318"
    )
    log_level: str = "INFO"
    log_json: bool = True
    instance_id: str = Field(default="", description="Replica name; defaults to host:pid.")


class ServiceSettings(PlatformSettings):
    """Settings shared by the six services; each service subclasses this."""

    service_name: str = "jiandu"
    mongo_db: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    consumer_group: str = ""

    handler_attempts: int = Field(default=3, ge=1, description="Tries before the DLT.")
    retry_backoff_s: float = Field(default=0.2, ge=0, description="First backoff, doubled.")
    session_timeout_ms: int = Field(default=10000, ge=6000)
    kafka_fetch_wait_ms: int = Field(
        default=0,
        ge=0,
        le=5000,
        description="Client-side wait after an empty fetch, for a broker that does not hold"
        " fetches (noida-db: `make run` sets 100); 0 on Apache Kafka.",
    )
    kafka_static_membership: bool = Field(
        default=True,
        description=(
            "Join consumer groups with group.instance.id = instance id + consumer (KIP-345): "
            "a restarted replica takes its partitions back without a rebalance. Needs a "
            "stable JIANDU_INSTANCE_ID (StatefulSet pod name, or the runner's name-replica)."
        ),
    )
    batch_max_records: int = Field(
        default=200,
        ge=1,
        le=10000,
        description="Most Kafka records applied in one MongoDB transaction.",
    )
    batch_max_wait_ms: int = Field(
        default=20,
        ge=0,
        le=10000,
        description="How long a poll waits for records before applying what it has.",
    )
    outbox_poll_s: float = Field(
        default=5.0,
        gt=0,
        description="Safety pass of the outbox relay; a commit wakes it at once.",
    )
    outbox_batch: int = Field(default=500, ge=1)
    timer_max_sleep_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest sleep of the timer wheel (it sleeps until the nearest due timer"
        " and is woken by commits that schedule an earlier one; this bounds how late a timer"
        " scheduled by another replica is seen).",
    )
    timer_batch: int = Field(default=100, ge=1, description="Timers fired in one transaction.")
    timers_run: bool = Field(
        default=True, description="Fire due timers in the background (tests call tick())."
    )
    lease_s: float = Field(default=15.0, gt=0, description="Timer and relay lease length.")
    transaction_attempts: int = Field(
        default=10, ge=1, description="Tries of one transaction that hit a write conflict."
    )

    @property
    def database(self) -> str:
        return self.mongo_db or f"jiandu_{self.service_name}"

    @property
    def group_id(self) -> str:
        return self.consumer_group or f"{self.topic_prefix}{self.service_name}"


def kafka_client_id(instance: str) -> str:
    """One client id per replica, so a group's members can be traced to the replica."""
    return "jiandu-" + re.sub(r"[^a-zA-Z0-9._-]", "-", instance)
