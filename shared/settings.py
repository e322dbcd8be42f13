"""Settings read only from the environment (12-factor); one subclass per service."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from faststream.security import BaseSecurity, SASLScram512
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.identity import LOOPBACK, IdentitySettings
from shared.mongo import MAX_IDLE_MS


class PlatformSettings(BaseSettings):
    """What every service needs to reach Kafka, MongoDB and the tracing backend.

    Environment variables carry the ``JIANDU_`` prefix, e.g. ``JIANDU_KAFKA_BOOTSTRAP``.
    """

    model_config = SettingsConfigDict(env_prefix="JIANDU_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_username: str = Field(default="", description="the service's own MongoDB user")
    mongo_password_file: str | None = Field(
        default=None, description="file with its password (Docker/Kubernetes secret)"
    )
    kafka_security_protocol: str = Field(
        default="PLAINTEXT",
        pattern=r"^(PLAINTEXT|SASL_PLAINTEXT|SASL_SSL)$",
        description="PLAINTEXT only for the embedded default on 127.0.0.1; production uses"
        " SASL (SCRAM-SHA-512) with one user per service.",
    )
    kafka_username: str = Field(default="", description="SCRAM user (one per service)")
    kafka_password_file: str | None = Field(default=None, description="file with its password")
    mongo_uri: str = "mongodb://127.0.0.1:27017/?retryWrites=false"
    mongo_max_idle_ms: int = Field(
        default=MAX_IDLE_MS,
        gt=0,
        description="a pooled MongoDB connection idle longer than this is replaced, not used"
        " (servers and load balancers drop idle connections unnoticed: SecantusDB after 300 s)",
    )
    topic_prefix: str = Field(
        default="", description="Namespace for every topic name (isolates test runs)."
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP endpoint, e.g. http://otel-collector:4318"
    )
    log_level: str = "INFO"
    log_json: bool = True
    instance_id: str = Field(default="", description="Replica name; defaults to host:pid.")

    @model_validator(mode="after")
    def _mongo_credentials(self) -> PlatformSettings:
        """``mongodb://host/...`` + user + password file → the URI with the credentials (the
        password never sits in the environment or in a manifest)."""
        if self.mongo_username and self.mongo_password_file:
            password = Path(self.mongo_password_file).read_text(encoding="utf-8").strip()
            scheme, sep, rest = self.mongo_uri.partition("://")
            if sep and "@" not in rest.split("/", 1)[0]:
                user = quote(self.mongo_username, safe="")
                self.mongo_uri = f"{scheme}://{user}:{quote(password, safe='')}@{rest}"
        return self

    def kafka_password(self) -> str:
        if not self.kafka_password_file:
            return ""
        return Path(self.kafka_password_file).read_text(encoding="utf-8").strip()

    def kafka_security(self) -> BaseSecurity | None:
        """FastStream security for the broker: SCRAM-SHA-512 as the service's own user."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return None
        tls = self.kafka_security_protocol == "SASL_SSL"
        return SASLScram512(
            self.kafka_username,
            self.kafka_password(),
            ssl_context=ssl.create_default_context() if tls else None,
            use_ssl=tls,
        )

    def kafka_client_options(self) -> dict[str, Any]:
        """The same, for plain aiokafka clients (admin, lag)."""
        if self.kafka_security_protocol == "PLAINTEXT":
            return {}
        tls = self.kafka_security_protocol == "SASL_SSL"
        return {
            "security_protocol": self.kafka_security_protocol,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.kafka_username,
            "sasl_plain_password": self.kafka_password(),
            **({"ssl_context": ssl.create_default_context()} if tls else {}),
        }


class ServiceSettings(PlatformSettings, IdentitySettings):
    """Settings shared by the six services; each service subclasses this.

    The token settings (``JIANDU_JWT_*``, ``JIANDU_PII_ROLES``) come from
    :class:`shared.identity.IdentitySettings`: every service verifies the gateway's tokens.
    """

    model_config = SettingsConfigDict(env_prefix="JIANDU_", extra="ignore")

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
    kafka_fetch_wait_min_ms: int = Field(
        default=5,
        ge=0,
        le=5000,
        description="The first such wait after a fetch that brought records, doubled with"
        " each empty answer in a row up to JIANDU_KAFKA_FETCH_WAIT_MS: records that follow"
        " others closely do not wait the whole long-poll.",
    )
    kafka_static_membership: bool = Field(
        default=True,
        description=(
            "Join consumer groups with group.instance.id = instance id + consumer (KIP-345): "
            "a restarted replica takes its partitions back without a rebalance. Needs a "
            "stable JIANDU_INSTANCE_ID (StatefulSet pod name, or the runner's name-replica)."
        ),
    )
    kafka_compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = Field(
        default="none",
        description="Compression of the record batches the services publish (gzip needs no"
        " extra package; lz4, zstd and snappy need theirs): less disk and network on Apache"
        " Kafka. On the embedded noida-db gzip halves what it stores and a third of its CPU,"
        " but aiokafka's gzip (level 9, ~0.1 ms a batch) and the consumers' decompression"
        " cost the services as much (measured), so the default stays none.",
    )

    def kafka_compression_type(self) -> Literal["gzip", "lz4", "zstd", "snappy"] | None:
        """``JIANDU_KAFKA_COMPRESSION`` as aiokafka and FastStream take it."""
        return None if self.kafka_compression == "none" else self.kafka_compression

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
    batch_linger_ms: int = Field(
        default=50,
        ge=0,
        le=1000,
        description="Once a poll brought fewer than JIANDU_BATCH_LINGER_RECORDS, how long it"
        " waits for more before applying them: fewer, larger batches at moderate rates, where"
        " a batch of one or two records costs nearly what one of fifty does. 0: none.",
    )
    batch_linger_records: int = Field(
        default=10,
        ge=1,
        le=10000,
        description="A poll that has this many records goes at once, without lingering"
        " (a busy consumer does not wait; 1: never linger).",
    )
    gc_young_threshold: int = Field(
        default=10_000,
        ge=0,
        description="Allocations between the garbage collector's young-generation passes"
        " (CPython's default is 700; a batch allocates hundreds of thousands of short-lived"
        " objects). The objects that exist once the service is built are frozen out of every"
        " pass: a full pass over them held a service for 180-190 ms. 0: CPython's defaults.",
    )
    write_together_max: int = Field(
        default=64,
        ge=0,
        description="A transaction writing at most this many documents sends them in ONE"
        " bulkWrite command across collections (one round trip: latency); a larger one writes"
        " per collection (insert_many / bulk_write), which SecantusDB applies with less CPU per"
        " document (throughput). 0: never.",
    )
    outbox_poll_s: float = Field(
        default=5.0,
        gt=0,
        description="Safety pass of the outbox relay; a commit wakes it at once.",
    )
    outbox_batch: int = Field(default=500, ge=1)
    outbox_mark_every_s: float = Field(
        default=0.2,
        ge=0,
        le=5,
        description="How long published outbox documents may wait to be marked sent, together"
        " with those published after them (one command for several commits' events; a crash"
        " in that window republishes them, which the consumers' inboxes absorb). 0: at once.",
    )
    outbox_sweep_grace_s: float = Field(
        default=2.0,
        ge=0,
        description="How long the sweeping relay (lease holder) leaves an unsent outbox"
        " document another replica wrote to that replica, which publishes its own at once.",
    )
    timer_max_sleep_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest sleep of the timer wheel (it sleeps until the nearest due timer"
        " and is woken by commits that schedule an earlier one; this bounds how late a timer"
        " scheduled by another replica is seen).",
    )
    metrics_refresh_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="How long /metrics waits for MongoDB to refresh the outbox and due-timer"
        " gauges before it answers with their last values.",
    )
    timer_batch: int = Field(default=100, ge=1, description="Timers fired in one transaction.")
    timer_sweep_grace_s: float = Field(
        default=2.0,
        ge=0,
        description="How long the sweeping wheel leaves a timer another replica has just"
        " scheduled to that replica (it fires its own at once; two firing one conflict).",
    )
    timers_run: bool = Field(
        default=True, description="Fire due timers in the background (tests call tick())."
    )
    timers_fire_at_commit: bool = Field(
        default=True,
        description="A timer a transaction schedules already due (a backlog, a replay, a late"
        " event) fires in that transaction instead of in a second one after it (only while"
        " timers_run; a failing one is left to the wheel).",
    )
    lease_s: float = Field(default=15.0, gt=0, description="Timer and relay lease length.")
    batch_conflict_attempts: int = Field(
        default=2,
        ge=1,
        description="Tries of a batch transaction that hit write conflicts before the batch is"
        " applied in halves (a record alone gets JIANDU_TRANSACTION_ATTEMPTS).",
    )
    batch_claim_attempts: int = Field(
        default=60,
        ge=1,
        description="Tries of a batch whose claimed document (the gateway's feed counter)"
        " another replica's batch holds: waits of 10 ms doubling up to 250 ms, about 15 s in"
        " all, before the batch is given back to Kafka.",
    )
    transaction_attempts: int = Field(
        default=10, ge=1, description="Tries of one transaction that hit a write conflict."
    )

    @model_validator(mode="after")
    def _no_dev_secret_off_loopback(self) -> ServiceSettings:
        """The built-in token secret is for the embedded default on 127.0.0.1 only."""
        if self.uses_dev_secret() and self.http_host not in LOOPBACK:
            raise ValueError(
                f"JIANDU_HTTP_HOST={self.http_host} needs a real token secret: set"
                " JIANDU_JWT_SECRET_FILE (or JIANDU_JWT_SECRET), never the built-in default"
            )
        return self

    @property
    def database(self) -> str:
        return self.mongo_db or f"jiandu_{self.service_name}"

    @property
    def group_id(self) -> str:
        return self.consumer_group or f"{self.topic_prefix}{self.service_name}"


def kafka_client_id(instance: str) -> str:
    """One client id per replica, so a group's members can be traced to the replica."""
    return "jiandu-" + re.sub(r"[^a-zA-Z0-9._-]", "-", instance)
