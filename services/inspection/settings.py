"""Settings of the inspection service (environment only, prefix ``JIANDU_``).

Every threshold the inspection rules use lives here (e.g. ``JIANDU_REPEAT_WINDOW_DAYS=30``,
``JIANDU_CERTIFICATION_LINE=0.95``).
"""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class InspectionSettings(ServiceSettings):
    service_name: str = "inspection"
    http_port: int = 8005

    # -- 多头检查、重复检查 (综合查一次: a joint inspection counts once)
    repeat_window_days: int = Field(default=90, ge=1, le=366)
    repeat_max_units: int = Field(
        default=3, ge=2, description="多头检查: this many units inspecting one enterprise"
    )
    repeat_max_visits: int = Field(
        default=3, ge=2, description="重复检查: this many visits to one enterprise"
    )

    # -- 持证率 (seed 002: 镇街执法人员持证率达到90%以上)
    certification_line: float = Field(default=0.9, gt=0, le=1)
    certification_min_officers: int = Field(
        default=5, ge=1, description="Fewer officers than this are never judged."
    )

    # -- 被纠错率 from 行政复议 / 行政诉讼 / 检察建议 outcomes
    correction_line: float = Field(default=0.2, gt=0, le=1)
    correction_min_reviews: int = Field(
        default=5, ge=1, description="Fewer reviews than this are never judged."
    )

    # -- notices
    notice_reply_days: int = Field(
        default=15, ge=1, le=90, description="The unit reports back within this many days."
    )
