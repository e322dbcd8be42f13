"""Settings of the notify service (environment only, prefix ``JIANDU_``).

Transport endpoints (SMTP relay, webhook URLs, SMS gateway) belong to the deployment, so
they are settings; which channels a unit has belongs to the unit directory data file.
A transport left unset makes its channel ``skipped`` (recorded, visible), never silently lost.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from shared.contracts import NoticeKind
from shared.settings import ServiceSettings

DEFAULT_REPLY_DAYS: dict[NoticeKind, int] = {
    NoticeKind.SUPERVISION_LETTER: 5,  # 督办: working days (a window of ≤ 7 days)
    NoticeKind.RECOMMENDATION: 15,  # MISSION: 监督建议书, reply due in 15 days
    NoticeKind.DECISION: 15,  # 执行情况 of a 监督决定书
    NoticeKind.TRANSFER: 30,  # feedback of the 纪检监察机关 on a 移送函
}


class NotifySettings(ServiceSettings):
    service_name: str = "notify"
    http_port: int = 8004
    handler_attempts: int = Field(
        default=6,
        ge=1,
        description="Tries before the DLT; above the platform's 3 because concurrent issues "
        "of one kind in one district contend for the same document-number counter.",
    )

    directory_path: str | None = Field(
        default=None, description="Unit directory YAML; default: the packaged one."
    )

    # -- email (SMTP, aiosmtplib)
    smtp_host: str | None = Field(default=None, description="No host: email is skipped.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_start_tls: bool = False
    smtp_use_tls: bool = False
    smtp_sender: str = "jiandu-notify@jiandu.example"
    smtp_timeout_s: float = Field(default=10.0, gt=0)

    # -- HTTP webhook / SMS gateway (httpx)
    webhook_url_override: str | None = Field(
        default=None, description="Send every webhook delivery here (staging, tests)."
    )
    webhook_urls: dict[str, str] = Field(
        default_factory=dict, description="Per-unit webhook URL, over the directory's."
    )
    sms_gateway_url: str | None = Field(default=None, description="No URL: SMS is skipped.")
    http_timeout_s: float = Field(default=10.0, gt=0)

    # -- delivery worker: bounded retries with exponential backoff, per channel
    delivery_attempts: int = Field(default=5, ge=1, le=50)
    delivery_backoff_s: float = Field(default=2.0, ge=0, description="First backoff, doubled.")
    delivery_backoff_max_s: float = Field(default=600.0, ge=0)
    delivery_lease_s: float = Field(
        default=60.0, gt=0, description="A claimed delivery is another replica's after this."
    )
    delivery_poll_s: float = Field(default=0.5, gt=0)
    delivery_concurrency: int = Field(
        default=4, ge=1, le=64, description="Sends in flight at once, per replica."
    )
    delivery_batch: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Deliveries claimed in one transaction, sent, then recorded in one.",
    )

    # -- 签收 and escalation
    ack_working_days: int = Field(
        default=1,
        ge=0,
        le=30,
        description="签收 window when the request names no future deadline: close of the "
        "working day this many working days after the notice.",
    )
    escalation_enabled: bool = True

    # -- supervision letters (督办函、建议书、决定书、移送函): reply windows
    letter_reply_days: dict[NoticeKind, int] = Field(
        default_factory=lambda: dict(DEFAULT_REPLY_DAYS),
        description="Reply window per letter kind, in days: up to 7 count working days "
        "(行政处罚法第八十五条), longer ones calendar days with a last day off rolled to the "
        "next working day. A letter may name its own window.",
    )

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> NotifySettings:
        longest = max(self.smtp_timeout_s, self.http_timeout_s)
        if self.delivery_lease_s <= longest:
            raise ValueError(
                f"delivery_lease_s ({self.delivery_lease_s}) must exceed the longest transport "
                f"timeout ({longest}), or a slow send could be claimed twice"
            )
        return self
