"""Settings of the hotline service (environment only, prefix ``JIANDU_``).

Every SLA limit and supervision threshold lives here so a district can tune them without a
code change, e.g. ``JIANDU_HOTSPOT_THRESHOLD=5`` or
``JIANDU_RESOLVE_DAYS='{"complaint": 10, "consultation": 3, "emergency": 0}'``.
"""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class HotlineSettings(ServiceSettings):
    service_name: str = "hotline"
    http_port: int = 8001

    matters_path: str | None = Field(
        default=None, description="Matter keyword table (YAML); default: the packaged one."
    )
    routing_path: str | None = Field(
        default=None, description="Seed routing catalogue (JSON); default: the packaged one."
    )

    # -- SLA (working days / working hours, Chinese calendar)
    ack_hours: float = Field(default=2.0, gt=0, description="签收 within these office hours.")
    resolve_days: dict[str, int] = Field(
        default_factory=lambda: {
            "complaint": 13,
            "suggestion": 13,
            "consultation": 3,
            "emergency": 0,  # 0: by the close of the day it was received
        },
        description="办结 limit in working days per work-order kind (a matter may override).",
    )
    escalate_after_days: int = Field(
        default=5, ge=1, description="通报 once overdue by this many working days."
    )
    default_extension_days: int = Field(default=5, ge=1, le=60)
    max_extension_days: int = Field(default=30, ge=1, le=60)

    # -- supervision leads (监督线索)
    bounce_returns: int = Field(default=2, ge=1, description="推诿: returned this many times.")
    bounce_handovers: int = Field(default=3, ge=1, description="推诿: passed this many times.")
    hotspot_threshold: int = Field(default=3, ge=2, description="高频投诉: N complaints ...")
    hotspot_window_days: float = Field(default=7.0, gt=0, description="... within this window.")
    duplicate_window_days: float = Field(
        default=2.0,
        gt=0,
        description="重复件: a report of the same problem at the same place within this window "
        "is linked to the first (same district, matter and street).",
    )
    duplicate_address_similarity: float = Field(
        default=0.75, ge=0, le=1, description="重复件: address bigram similarity at least this."
    )
    duplicate_text_similarity: float = Field(
        default=0.5, ge=0, le=1, description="重复件: description bigram similarity at least this."
    )
    case_deadline_days: int = Field(
        default=30, ge=1, description="应立尽立: a case must arrive within N calendar days."
    )
    violation_keywords: list[str] = Field(
        default_factory=lambda: ["属实", "违法行为成立"],
        description="Outcome phrases that confirm a violation when no verdict is given.",
    )
    violation_negations: list[str] = Field(
        default_factory=lambda: [
            "不属实",
            "非属实",
            "部分属实",
            "是否属实",
            "属实与否",
            "无法核实",
            "未能核实",
            "无法证实",
            "不成立",
        ],
        description="Phrases that negate or qualify a violation keyword (struck out first).",
    )
    platform_unit: str = Field(
        default="12345", description="Who the timeline names for the platform's own decisions."
    )
