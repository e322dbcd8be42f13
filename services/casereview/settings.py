"""Settings of the casereview service (environment only, prefix ``JIANDU_``).

Every threshold the pre-check and the rectification process use lives here, so a district
can tune them without a code change (e.g. ``JIANDU_RECTIFICATION_DAYS=20``,
``JIANDU_LARGE_FINE_THRESHOLDS='{"business": 100000}'``).
"""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class CasereviewSettings(ServiceSettings):
    service_name: str = "casereview"
    http_port: int = 8002

    # -- data files (default: the packaged ones)
    rubric_dir: str | None = Field(
        default=None, description="Folder of rubric-*.yaml files; default: the packaged one."
    )
    rubric_version: str | None = Field(
        default=None, description="Rubric used for new reviews; default: the newest version."
    )
    reviewers_path: str | None = Field(
        default=None, description="Reviewer directory YAML; default: the packaged one."
    )

    # -- pre-check (自动预检) thresholds, 《行政处罚法》 defaults
    decision_limit_days: int = Field(
        default=90, ge=1, description="立案 → 决定, calendar days (第六十条)"
    )
    service_limit_days: int = Field(
        default=7, ge=0, description="决定 → 送达, working days (第六十一条、第八十五条)"
    )
    min_officers: int = Field(default=2, ge=1, description="执法人员不得少于两人, 第四十二条")
    large_fine_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"individual": 5000.0, "business": 50000.0, "other": 50000.0},
        description="较大数额罚款 (元) per party type: hearing notice and legal review expected.",
    )
    hearing_decision_kinds: list[str] = Field(
        default_factory=lambda: [
            "revoke_license",
            "lower_qualification",
            "suspend_business",
            "order_closure",
            "restrict_practice",
        ],
        description="Decisions that always carry the right to a hearing (第六十三条).",
    )

    # -- sampling (双随机)
    max_population: int = Field(
        default=20000, ge=1, description="Cases one campaign may draw from."
    )

    # -- rectification (整改)
    rectification_days: int = Field(
        default=30, ge=1, le=365, description="Calendar days the unit has to rectify."
    )

    # -- reports
    report_top_defects: int = Field(default=5, ge=1, le=50)
    report_max_days: int = Field(
        default=1100, ge=31, description="Longest report period (about three years)."
    )
