"""The event contract: data schemas of external and internal event types.

The gateway validates ingest against these models; services parse with the same models,
so a field means one thing everywhere. Internal payloads (notification requests, leads)
live here because more than one service produces them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.clock import Instant
from shared.envelope import Envelope, EventRejected, describe_validation_error

C = TypeVar("C", bound="Contract")


class Contract(BaseModel):
    """Event data: unknown fields are kept (producers evolve), types are strict enough.

    Kept fields are stored as they come, so they must be storable: names not starting with
    ``$``, without ``.`` or NUL (MongoDB field names), at most 100 characters; whole numbers
    within BSON's 64-bit integers (a bigger one failed the write: a 500 the fuzzer found).
    """

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _storable_extra(self) -> Self:
        for reason in _unstorable(self.model_extra or {}):
            raise ValueError(reason)
        return self


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The whole numbers BSON stores."""


def _unstorable(value: Any) -> Iterator[str]:
    """Why ``value`` (kept as it came) cannot be stored, if it cannot."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if (
                not isinstance(key, str)
                or not key
                or key.startswith("$")
                or "." in key
                or "\x00" in key
                or len(key) > 100
            ):
                yield f"field name {key!r} cannot be stored"
            yield from _unstorable(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _unstorable(inner)
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            yield f"number {value} cannot be stored (beyond 64-bit integers)"


# ---------------------------------------------------------------- 12345 hotline


class Complainant(Contract):
    name: str = Field(max_length=100)
    phone: str = Field(max_length=40)


class WorkOrderCreated(Contract):
    """``gov.12345.workorder.created``: a citizen complaint (工单) about enforcement."""

    order_id: str = Field(min_length=1, max_length=64)
    channel: str = Field(default="phone", max_length=32)
    received_at: Instant
    district: str = Field(pattern=r"^\d{6}$")
    street: str | None = Field(default=None, max_length=100)
    address: str = Field(min_length=1, max_length=300)
    category: str | None = Field(default=None, max_length=64, description="matter code")
    kind: Literal["complaint", "consultation", "emergency", "suggestion"] = "complaint"
    description: str = Field(min_length=1, max_length=8000)
    target: str | None = Field(default=None, max_length=200, description="business / USCC")
    complainant: Complainant


WorkOrderAction = Literal[
    "acknowledged", "returned", "extended", "resolved", "rated", "reclassified"
]


class WorkOrderUpdated(Contract):
    """``gov.12345.workorder.updated``: a unit's action reported by the 12345 platform."""

    order_id: str = Field(min_length=1, max_length=64)
    action: WorkOrderAction
    by_unit: str = Field(min_length=1, max_length=100)
    at: Instant
    reason: str | None = Field(default=None, max_length=2000)
    outcome: str | None = Field(default=None, max_length=2000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    extension_days: int | None = Field(default=None, ge=1, le=60)
    category: str | None = Field(
        default=None, max_length=64, description="the new matter code (action reclassified)"
    )

    @model_validator(mode="after")
    def _reclassified_has_a_category(self) -> Self:
        if self.action == "reclassified" and not self.category:
            raise ValueError("a reclassified work order needs its new category")
        return self


# ---------------------------------------------------------------- enforcement cases


class Party(Contract):
    type: Literal["individual", "business", "other"]
    name: str = Field(max_length=200)
    id: str | None = Field(default=None, max_length=64)


class CaseDates(Contract):
    discovered: dt.date | None = None
    filed: dt.date | None = None
    notified: dt.date | None = None
    decided: dt.date | None = None
    served: dt.date | None = None
    closed: dt.date | None = None


class Officer(Contract):
    id: str = Field(max_length=64)
    cert_no: str | None = Field(default=None, max_length=64)
    cert_valid_until: dt.date | None = None


class CaseDocument(Contract):
    kind: str = Field(max_length=64)
    date: dt.date | None = None


class Decision(Contract):
    kind: str = Field(max_length=64, description="fine / warning / no_penalty / ...")
    fine: float = Field(default=0, ge=0)
    confiscation: float = Field(default=0, ge=0)


class CaseClosed(Contract):
    """``gov.enforcement.case.closed``: a closed case file (案卷) from the case system."""

    case_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    procedure: Literal["general", "simple"]
    matter: str = Field(max_length=200)
    legal_provisions: list[str] = Field(default_factory=list, max_length=50)
    party: Party
    dates: CaseDates
    officers: list[Officer] = Field(default_factory=list, max_length=20)
    documents: list[CaseDocument] = Field(default_factory=list, max_length=200)
    decision: Decision
    circumstances: list[str] = Field(default_factory=list, max_length=50)
    discretion_baseline: str | None = Field(default=None, max_length=200)
    legal_review: bool | None = None
    hearing: bool | None = None
    publicity: bool | None = None
    recording: bool | None = None
    source_order_id: str | None = Field(default=None, max_length=64)


PenaltyMeasure = Literal[
    "warning",
    "confiscate_gains",
    "confiscate_property",
    "suspend_license",
    "lower_qualification",
    "revoke_license",
    "restrict_business",
    "suspend_business",
    "order_closure",
    "restrict_practice",
]
"""Penalties other than the fine (《行政处罚法》第九条): 警告, 没收违法所得, 没收非法财物,
暂扣许可证件, 降低资质等级, 吊销许可证件, 限制开展生产经营活动, 责令停产停业, 责令关闭, 限制从业."""


class PenaltyDecided(Contract):
    """``gov.enforcement.penalty.decided``: a penalty decision (处罚决定).

    ``goods_value`` (货值金额) and ``illegal_gains`` (违法所得) are the basis of 倍数罚
    provisions; ``measures`` are the non-fine penalties the decision imposes besides the fine.
    """

    case_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    provision: str = Field(min_length=1, max_length=200)
    party_type: Literal["individual", "business", "other"]
    fine: float = Field(ge=0)
    decided_at: Instant
    circumstances: list[str] = Field(default_factory=list, max_length=50)
    party_name: str | None = Field(default=None, max_length=200)
    goods_value: float | None = Field(default=None, ge=0, description="货值金额 (元)")
    illegal_gains: float | None = Field(default=None, ge=0, description="违法所得 (元)")
    measures: list[PenaltyMeasure] = Field(default_factory=list, max_length=10)


class PenaltyFiled(Contract):
    """``gov.enforcement.penalty.filed``: a unit files a top-tier penalty (顶格处罚备案)."""

    case_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    filed_at: Instant
    documents: list[CaseDocument] = Field(default_factory=list, max_length=100)


# ---------------------------------------------------------------- inspections, officers, reviews

USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"
"""统一社会信用代码: 18 characters (GB 32100-2015 alphabet, no I, O, S, V, Z)."""


class InspectionPlanned(Contract):
    """``gov.enforcement.inspection.planned``: an inspection plan (涉企行政检查计划) filed
    with the district justice bureau (备案): who may be inspected, when, and how chosen."""

    plan_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    period_start: dt.date
    period_end: dt.date
    enterprises: list[str] = Field(
        default_factory=list, max_length=2000, description="USCCs in the plan"
    )
    sectors: list[str] = Field(
        default_factory=list, max_length=100, description="sectors the plan covers (any firm)"
    )
    double_random: bool = Field(description="双随机、一公开: inspected firms drawn at random")
    filed_at: Instant

    @model_validator(mode="after")
    def _period_in_order(self) -> Self:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class InspectingOfficer(Contract):
    id: str = Field(min_length=1, max_length=64)
    cert_no: str | None = Field(default=None, max_length=64)


class InspectionConducted(Contract):
    """``gov.enforcement.inspection.conducted``: one inspection of an enterprise (涉企检查)."""

    inspection_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    officers: list[InspectingOfficer] = Field(min_length=1, max_length=20)
    enterprise: str = Field(pattern=USCC_PATTERN, description="统一社会信用代码")
    enterprise_name: str | None = Field(default=None, max_length=200)
    sector: str | None = Field(default=None, max_length=64)
    at: Instant
    code_scanned: bool = Field(description="检查码 scanned (凡检查必亮码)")
    joint_id: str | None = Field(
        default=None, max_length=64, description="joint inspection (综合查一次): one visit"
    )
    plan_id: str | None = Field(default=None, max_length=64)
    result: Literal["no_issue", "rectification", "case_opened", "other"] = "no_issue"


class OfficerCertified(Contract):
    """``gov.enforcement.officer.certified``: an enforcement certificate issued or renewed."""

    officer_id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=100)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    cert_no: str = Field(min_length=1, max_length=64)
    valid_from: dt.date
    valid_until: dt.date
    at: Instant


class OfficerSuspended(Contract):
    """``gov.enforcement.officer.suspended``: certificate suspended (暂停), maybe until a day."""

    officer_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    cert_no: str = Field(min_length=1, max_length=64)
    since: dt.date
    until: dt.date | None = None
    reason: str = Field(default="", max_length=2000)
    at: Instant


class OfficerRevoked(Contract):
    """``gov.enforcement.officer.revoked``: the certificate withdrawn (收回 / 注销)."""

    officer_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    cert_no: str = Field(min_length=1, max_length=64)
    since: dt.date
    reason: str = Field(default="", max_length=2000)
    at: Instant


class ReviewDecided(Contract):
    """``gov.enforcement.review.decided``: a 行政复议 / 行政诉讼 / 检察建议 outcome on a case."""

    review_id: str = Field(min_length=1, max_length=64)
    case_id: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    channel: Literal["reconsideration", "litigation", "procuratorate"]
    outcome: Literal["upheld", "revised", "revoked", "confirmed_illegal"]
    decided_at: Instant
    body: str | None = Field(default=None, max_length=200, description="复议机关 / 法院 / 检察院")


EXTERNAL_SCHEMAS: dict[str, type[Contract]] = {
    "gov.12345.workorder.created": WorkOrderCreated,
    "gov.12345.workorder.updated": WorkOrderUpdated,
    "gov.enforcement.case.closed": CaseClosed,
    "gov.enforcement.penalty.decided": PenaltyDecided,
    "gov.enforcement.penalty.filed": PenaltyFiled,
    "gov.enforcement.inspection.planned": InspectionPlanned,
    "gov.enforcement.inspection.conducted": InspectionConducted,
    "gov.enforcement.officer.certified": OfficerCertified,
    "gov.enforcement.officer.suspended": OfficerSuspended,
    "gov.enforcement.officer.revoked": OfficerRevoked,
    "gov.enforcement.review.decided": ReviewDecided,
}


def parse_data(event: Envelope, model: type[C]) -> C:
    """Validate an event's data against its contract; bad data raises EventRejected."""
    try:
        return model.model_validate(event.data)
    except Exception as exc:
        raise EventRejected(f"{event.type}: {describe_validation_error(exc)}") from exc


def validate_external(event: Envelope) -> Contract:
    """The gateway's (and any direct-from-Kafka consumer's) schema check."""
    schema = EXTERNAL_SCHEMAS.get(event.type)
    if schema is None:
        raise EventRejected(f"unknown event type {event.type!r}", code="unknown_type")
    return parse_data(event, schema)


# ---------------------------------------------------------------- internal contracts


class NoticeKind(StrEnum):
    """Kinds of notice to a unit; the value is the template name."""

    REMINDER = "reminder"  # 催办通知
    SUPERVISION_LETTER = "supervision_letter"  # 督办函
    SUPERVISION_NOTICE = "supervision_notice"  # 监督通知书
    RECTIFICATION = "rectification"  # 整改通知书
    RECOMMENDATION = "recommendation"  # 监督建议书
    DECISION = "decision"  # 监督决定书
    FILING_REMINDER = "filing_reminder"  # 备案提醒
    ESCALATION = "escalation"  # 通报
    TRANSFER = "transfer"  # 移送函 (to the 纪检监察机关)


NOTICE_TITLES: dict[NoticeKind, str] = {
    NoticeKind.REMINDER: "催办通知",
    NoticeKind.SUPERVISION_LETTER: "督办函",
    NoticeKind.SUPERVISION_NOTICE: "监督通知书",
    NoticeKind.RECTIFICATION: "整改通知书",
    NoticeKind.RECOMMENDATION: "监督建议书",
    NoticeKind.DECISION: "监督决定书",
    NoticeKind.FILING_REMINDER: "备案提醒",
    NoticeKind.ESCALATION: "通报",
    NoticeKind.TRANSFER: "移送函",
}

LETTER_KINDS = frozenset(
    {
        NoticeKind.SUPERVISION_LETTER,
        NoticeKind.RECOMMENDATION,
        NoticeKind.DECISION,
        NoticeKind.TRANSFER,
    }
)
"""Supervision letters (监督文书) whose recipient owes a written reply (书面回复/反馈)."""


def notice_id(idempotency_key: str) -> str:
    """The notice a request creates: deterministic, so the same request (by idempotency key)
    is always the same notice, and the requester knows its id before notify issues it."""
    return "ntc-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


NOTIFY_REQUEST_TYPE = "jiandu.notify.requested"

NoticeSubject = Literal[
    "complaint", "case", "filing", "review", "rectification", "lead", "inspection"
]
"""What a notice is about."""


class NotificationRequest(Contract):
    """A request to notify a unit (on ``notify.requests``); one notice per idempotency key."""

    idempotency_key: str = Field(min_length=1, max_length=300)
    kind: NoticeKind
    recipient_unit: str = Field(min_length=1, max_length=100)
    district: str = Field(pattern=r"^\d{6}$")
    subject_type: NoticeSubject
    subject_id: str = Field(min_length=1, max_length=200)
    summary: str = Field(max_length=2000)
    deadline: Instant | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    requested_by: str = Field(description="the service that asked")
    reply_requested: bool = Field(
        default=False,
        description="a supervision letter whose reply notify tracks: escalated to the "
        "supervising level when unanswered by its reply deadline",
    )
    reply_days: int | None = Field(
        default=None, ge=1, le=90, description="reply window; default: the kind's (notify)"
    )

    def to_event(self, source: str) -> Envelope:
        return Envelope(
            type=NOTIFY_REQUEST_TYPE,
            source=source,
            subject=f"{self.subject_type}/{self.subject_id}",
            district=self.district,
            partitionkey=self.idempotency_key,
            data=self.model_dump(mode="json"),
        )


class LeadKind(StrEnum):
    """监督线索 kinds."""

    BOUNCE = "bounce"  # 推诿
    RESPONSIBILITY_SHIFT = "responsibility_shift"  # 以属地为由推责
    HOTSPOT = "hotspot"  # 高频投诉
    CASE_NOT_OPENED = "case_not_opened"  # 应立未立
    OVERDUE = "overdue"  # 超期未办
    MISSING_FILING = "missing_filing"  # 顶格处罚未备案
    LATE_FILING = "late_filing"  # 逾期备案
    DISPROPORTION = "disproportion"  # 过罚不当
    FINE_ANOMALY = "fine_anomaly"  # 罚没款异常增长
    REVIEW_FAILED = "review_failed"  # 案卷评查不合格
    UNPLANNED_INSPECTION = "unplanned_inspection"  # 未备案检查
    REPEATED_INSPECTION = "repeated_inspection"  # 多头检查、重复检查
    CODE_NOT_SHOWN = "code_not_shown"  # 未亮码
    UNCERTIFIED_OFFICER = "uncertified_officer"  # 无证执法
    LOW_CERTIFICATION_RATE = "low_certification_rate"  # 持证率不足
    HIGH_CORRECTION_RATE = "high_correction_rate"  # 被纠错率偏高


LEAD_TYPE = "jiandu.supervision.lead.raised"
LEAD_DISPOSED_TYPE = "jiandu.gateway.lead.disposed"
"""A supervisor's disposal (处置) of a lead, emitted by the gateway on ``supervision.leads``."""

OFFICER_CHANGED_TYPE = "jiandu.inspection.officer.changed"
"""The officer registry entry after a change (on ``inspection.events``, ``data.officer``):
the inspection service owns the registry, casereview keeps a copy for its 持证 pre-check."""


class SupervisionLead(Contract):
    """A lead for the supervising bureau (on ``supervision.leads``)."""

    lead_id: str
    kind: LeadKind
    district: str = Field(pattern=r"^\d{6}$")
    unit: str | None = None
    subject_type: str
    subject_id: str
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    raised_at: Instant
    raised_by: str

    @staticmethod
    def make_id(kind: LeadKind, *parts: str) -> str:
        """Deterministic id: the same finding raised twice is the same lead."""
        digest = hashlib.sha256("|".join((kind.value, *parts)).encode()).hexdigest()[:24]
        return f"lead-{kind.value}-{digest}"

    def to_event(self, source: str) -> Envelope:
        return Envelope(
            id=self.lead_id,
            type=LEAD_TYPE,
            source=source,
            subject=f"{self.subject_type}/{self.subject_id}",
            district=self.district,
            partitionkey=self.lead_id,
            time=self.raised_at,
            data=self.model_dump(mode="json"),
        )
