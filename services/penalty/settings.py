"""Settings of the penalty service (environment only, prefix ``JIANDU_``).

Every threshold the supervision rules use lives here, so a district can tune them without a
code change (e.g. ``JIANDU_FILING_DEADLINE_CALENDAR=working``,
``JIANDU_LARGE_FINE_THRESHOLDS='{"business": 100000}'``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.settings import ServiceSettings


class PenaltySettings(ServiceSettings):
    service_name: str = "penalty"
    http_port: int = 8003

    catalogue_path: str | None = Field(
        default=None, description="Penalty catalogue YAML; default: the packaged one."
    )

    # -- 顶格处罚备案: filing deadline
    filing_deadline_days: int = Field(default=10, ge=1, le=90)
    filing_deadline_calendar: Literal["calendar", "working"] = Field(
        default="calendar",
        description="Count the deadline in calendar days (seed 000: 10日内) or working days.",
    )
    filing_deadline_roll_over: bool = Field(
        default=True,
        description="A calendar deadline ending on a day off (法定节假日, weekend) ends on the "
        "next working day instead (《民法典》第二百零三条).",
    )
    top_tier_measures: list[str] = Field(
        default_factory=lambda: [
            "revoke_license",
            "suspend_business",
            "order_closure",
            "restrict_practice",
            "confiscate_property",
        ],
        description="Non-fine penalties that make a decision top-tier whatever the fine "
        "(吊销许可证件、责令停产停业、责令关闭、限制从业、没收非法财物).",
    )

    # -- large top-tier fines (大额顶格罚款), 元, per party type
    large_fine_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"individual": 5000.0, "business": 50000.0, "other": 50000.0}
    )

    # -- 过罚不当: circumstances that argue against the maximum
    mitigating_circumstances: list[str] = Field(
        default_factory=lambda: [
            "first_offence",
            "minor",
            "corrected",
            "cooperative",
            "voluntary_report",
            "harm_eliminated",
            "coerced",
            "minor_party",
        ]
    )

    # -- 监督建议书: the unit must reply within this many calendar days
    recommendation_reply_days: int = Field(default=15, ge=1, le=90)

    # -- 罚没款异常增长 / 趋利性执法
    anomaly_history_months: int = Field(
        default=6, ge=1, le=36, description="Trailing months forming the unit's own baseline."
    )
    anomaly_min_history_months: int = Field(
        default=2, ge=1, description="Months with fines needed before own growth is judged."
    )
    anomaly_own_growth: float = Field(
        default=1.0,
        gt=0,
        description="Flag when (month − baseline) / baseline ≥ this (1.0 = +100%).",
    )
    anomaly_peer_ratio: float = Field(
        default=3.0, gt=1, description="Flag when month / mean of peer units ≥ this."
    )
    anomaly_min_peers: int = Field(default=3, ge=1)
    anomaly_min_amount: float = Field(
        default=10000.0, ge=0, description="Months below this total (元) are never anomalous."
    )
