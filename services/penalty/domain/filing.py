"""Rules about one penalty: top-tier (顶格) detection, the filing deadline (备案期限),
lateness, disproportion (过罚不当) and what the bureau may answer (审查结论).

Pure functions over plain values; the handlers feed them and store what they return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from services.penalty.domain.catalogue import BASIS_LABELS, MEASURE_LABELS, Catalogue
from shared.workcalendar import CST, add_working_days, is_working_day

AMOUNT_TOLERANCE = 0.005
"""Half a fen: fines are money, compared to the cent."""

Classification = Literal[
    "top_tier", "not_top_tier", "unknown_provision", "unknown_party_type", "basis_needed"
]


class TopTierAssessment(BaseModel):
    """Where a decided penalty sits in its legal range, and whether that is the maximum."""

    classification: Classification
    top_tier: bool | None
    provision_id: str | None = None
    domain: str | None = None
    range_min: float | None = None
    range_max: float | None = None
    range_kind: Literal["fixed", "multiple"] | None = None
    basis: str | None = None
    basis_value: float | None = None
    band: str | None = None
    band_label: str | None = None
    above_range: bool = False
    top_tier_measures: list[str] = Field(default_factory=list)
    measures_not_provided: list[str] = Field(default_factory=list)
    large: bool = False
    reason: str


def is_large(fine: float, party_type: str, thresholds: Mapping[str, float]) -> bool:
    """大额: at or over the configured amount for this party type (no threshold: never)."""
    threshold = thresholds.get(party_type)
    return threshold is not None and fine + AMOUNT_TOLERANCE >= threshold


def _labels(measures: Iterable[str]) -> str:
    return "、".join(MEASURE_LABELS.get(m, m) for m in measures)


def assess_penalty(
    catalogue: Catalogue,
    provision: str,
    party_type: str,
    fine: float,
    large_thresholds: Mapping[str, float],
    *,
    goods_value: float | None = None,
    illegal_gains: float | None = None,
    measures: Sequence[str] = (),
    top_tier_measures: Iterable[str] = (),
) -> TopTierAssessment:
    """Top-tier means the fine reaches the maximum of the provision's range for the party, or
    the decision imposes one of the heaviest non-fine penalties (``top_tier_measures``:
    吊销许可证件、责令停产停业、没收非法财物、限制从业 …, 《行政处罚法》第九条).

    For a 倍数罚 provision the range is computed from the goods value or illegal gains; without
    that basis a fine inside the fixed range is judged by it (the reason says so), and a fine
    above it cannot be judged (``basis_needed``): it may well be lawful.

    An unknown provision (or a party type the provision sets no range for) cannot be judged
    automatically: it is returned as such so that a supervisor classifies it by hand.
    """
    heavy_set = set(top_tier_measures)
    heavy = [m for m in dict.fromkeys(measures) if m in heavy_set]
    heavy_note = f"；决定{_labels(heavy)}，属顶格处罚" if heavy else ""
    found = catalogue.lookup(provision)
    if found is None:
        return TopTierAssessment(
            classification="top_tier" if heavy else "unknown_provision",
            top_tier=True if heavy else None,
            top_tier_measures=heavy,
            reason=f"处罚依据“{provision}”不在处罚裁量目录（{catalogue.version}）中，"
            f"{'罚款幅度' if heavy else ''}需人工认定{heavy_note}",
        )
    not_provided = (
        [m for m in dict.fromkeys(measures) if m not in found.measures]
        if found.measures is not None
        else []
    )
    not_provided_note = (
        f"；{found.provision} 未规定{_labels(not_provided)}，超出法定处罚种类"
        if not_provided
        else ""
    )
    fine_range = next((r for k, r in found.party_types.items() if k == party_type), None)
    if fine_range is None:
        return TopTierAssessment(
            classification="top_tier" if heavy else "unknown_party_type",
            top_tier=True if heavy else None,
            provision_id=found.id,
            domain=found.domain,
            above_range=bool(not_provided),
            top_tier_measures=heavy,
            measures_not_provided=not_provided,
            reason=f"{found.provision} 未规定对 {party_type} 的罚款幅度，需人工认定"
            f"{heavy_note}{not_provided_note}",
        )
    applied, kind, basis, basis_value, basis_note = fine_range, "fixed", None, None, ""
    multiple = fine_range.multiple
    if multiple is not None:
        basis = multiple.basis
        label = BASIS_LABELS[basis]
        basis_value = goods_value if basis == "goods_value" else illegal_gains
        if basis_value is not None:
            applied = fine_range.for_basis(basis_value)
            if applied is not fine_range:
                kind = "multiple"
                times = f"{multiple.min_times:g}–{multiple.max_times:g}"
                basis_note = f"（{label} {basis_value:g} 元 × {times} 倍）"
        elif fine - AMOUNT_TOLERANCE > fine_range.max and not heavy:
            return TopTierAssessment(
                classification="basis_needed",
                top_tier=None,
                provision_id=found.id,
                domain=found.domain,
                range_min=fine_range.min,
                range_max=fine_range.max,
                range_kind="fixed",
                basis=basis,
                above_range=bool(not_provided),
                measures_not_provided=not_provided,
                reason=f"罚款 {fine:g} 元高于{found.provision}（{party_type}）固定幅度上限 "
                f"{fine_range.max:g} 元，但该条对{label}达到 {multiple.at_least:g} 元的按"
                f"{multiple.min_times:g}–{multiple.max_times:g} 倍处罚；"
                f"未报{label}，需补报或人工认定"
                f"{not_provided_note}",
            )
        else:
            basis_note = f"（未报{label}，按固定幅度认定）"
    top_by_fine = fine + AMOUNT_TOLERANCE >= applied.max
    above_fine = fine - AMOUNT_TOLERANCE > applied.max
    top = top_by_fine or bool(heavy)
    band = applied.band_of(fine)
    band_name: str | None
    band_label: str | None
    if above_fine:
        band_name, band_label = "above_range", "超出法定上限"
    elif fine + AMOUNT_TOLERANCE < applied.min:
        band_name, band_label = "below_range", "低于法定下限（减轻处罚）"
    else:
        band_name = band.band if band else None
        band_label = band.label if band else None
    where = f"{found.provision}（{party_type}）幅度 {applied.min:g}–{applied.max:g} 元{basis_note}"
    verdict = "达到上限，属顶格处罚" if top_by_fine else "未达上限"
    return TopTierAssessment(
        classification="top_tier" if top else "not_top_tier",
        top_tier=top,
        provision_id=found.id,
        domain=found.domain,
        range_min=applied.min,
        range_max=applied.max,
        range_kind=kind,  # type: ignore[arg-type]
        basis=basis,
        basis_value=basis_value,
        band=band_name,
        band_label=band_label,
        above_range=above_fine or bool(not_provided),
        top_tier_measures=heavy,
        measures_not_provided=not_provided,
        large=top_by_fine and is_large(fine, party_type, large_thresholds),
        reason=f"罚款 {fine:g} 元，{where}，{verdict}{heavy_note}{not_provided_note}",
    )


# ------------------------------------------------------------------ filing deadline


@dataclass(frozen=True)
class TimeLimit:
    """A time limit of the penalty service: how its days are counted, and the source."""

    calendar: Literal["calendar", "working"]
    source: str


TIME_LIMITS: dict[str, TimeLimit] = {
    "filing": TimeLimit(
        "calendar",
        "000_ea473ff1d8cb02b8.txt 静安区2025年行政执法监督工作计划：“将本单位作出的顶格行政处罚案件"
        "自作出之日起10日内报区司法局备案”（自然日，作出之日不计入）；最后一日为法定休假日的，"
        "顺延至休假日后的第一个工作日（《民法典》第二百零三条、《民事诉讼法》第八十五条），"
        "JIANDU_FILING_DEADLINE_ROLL_OVER=false 关闭顺延",
    ),
    "recommendation_reply": TimeLimit(
        "calendar",
        "监督建议书回复期限（自然日，JIANDU_RECOMMENDATION_REPLY_DAYS）：地方监督办法未规定为"
        "工作日，《行政处罚法》第八十五条只适用于该法的二日、三日、五日、七日",
    ),
}
"""Every time limit of the penalty service, by name: calendar or working days, and why."""


class FilingDeadline(BaseModel):
    """The last day a filing is on time, and the instant after which it is late."""

    last_day: dt.date
    due: dt.datetime
    days: int
    calendar: Literal["calendar", "working"]
    rolled_from: dt.date | None = None


def filing_deadline(
    decided_at: dt.datetime,
    days: int,
    calendar: Literal["calendar", "working"] = "calendar",
    *,
    roll_over: bool = True,
) -> FilingDeadline:
    """自作出之日起 N 日内备案: the decision day is not counted; the last day is whole.

    Days are China Standard Time days; with ``working`` only working days count (调休 aware).
    With ``roll_over`` a calendar deadline whose last day is a day off (法定节假日 or a weekend
    that is not a 调休 working day) ends on the next working day instead.
    """
    decided_day = decided_at.astimezone(CST).date()
    rolled_from: dt.date | None = None
    if calendar == "working":
        last_day = add_working_days(decided_day, days)
    else:
        last_day = decided_day + dt.timedelta(days=days)
        if roll_over and not is_working_day(last_day):
            rolled_from = last_day
            while not is_working_day(last_day):
                last_day += dt.timedelta(days=1)
    due = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), CST)
    return FilingDeadline(
        last_day=last_day,
        due=due.astimezone(dt.UTC),
        days=days,
        calendar=calendar,
        rolled_from=rolled_from,
    )


def days_late(filed_at: dt.datetime, deadline: FilingDeadline) -> int:
    """Calendar days past the last day (0: on time)."""
    filed_day = filed_at.astimezone(CST).date()
    return max(0, (filed_day - deadline.last_day).days)


# ------------------------------------------------------------------ 过罚不当

MITIGATING_LABELS: dict[str, str] = {
    "first_offence": "初次违法",
    "minor": "违法行为轻微",
    "corrected": "已及时改正",
    "cooperative": "配合查处有立功表现",
    "voluntary_report": "主动供述尚未掌握的违法行为",
    "harm_eliminated": "主动消除或者减轻危害后果",
    "coerced": "受他人胁迫或者诱骗",
    "minor_party": "当事人为未成年人",
}
AGGRAVATING_LABELS: dict[str, str] = {
    "repeat_offence": "屡教不改",
    "obstructed": "阻碍执法",
    "serious_harm": "危害后果严重",
}
LAW = "《中华人民共和国行政处罚法》"


class DisproportionFinding(BaseModel):
    """Why a top-tier penalty looks disproportionate (过罚不当), in the bureau's words."""

    mitigating: list[str]
    aggravating: list[str]
    reasons: list[str]


def check_disproportion(
    top_tier: bool | None, circumstances: Iterable[str], mitigating: Iterable[str]
) -> DisproportionFinding | None:
    """A maximum fine although the file records circumstances that call for less.

    Aggravating circumstances do not clear the flag (the bureau weighs both); they are
    listed so the reviewer sees the whole picture.
    """
    if not top_tier:
        return None
    recorded = list(dict.fromkeys(circumstances))
    found = [c for c in recorded if c in set(mitigating)]
    if not found:
        return None
    aggravating = [c for c in recorded if c in AGGRAVATING_LABELS]
    reasons = [
        f"顶格处罚，但案卷记录了从轻/减轻情节：{MITIGATING_LABELS.get(c, c)}（{c}）" for c in found
    ]
    if "minor" in found and "corrected" in found:
        reasons.append(f"违法行为轻微并及时改正的，不予行政处罚（{LAW}第三十三条第一款）")
    elif "first_offence" in found and "corrected" in found:
        reasons.append(f"初次违法且及时改正的，可以不予行政处罚（首违不罚，{LAW}第三十三条第一款）")
    if {"harm_eliminated", "coerced", "cooperative", "voluntary_report"} & set(found):
        reasons.append(f"具有法定应当从轻或者减轻处罚情节（{LAW}第三十二条）")
    if aggravating:
        labels = "、".join(AGGRAVATING_LABELS[c] for c in aggravating)
        reasons.append(f"同时记录了从重情节：{labels}，需结合裁量基准说明理由")
    return DisproportionFinding(mitigating=found, aggravating=aggravating, reasons=reasons)


# ------------------------------------------------------------------ status and review

Status = Literal[
    "classification_needed",
    "not_required",
    "awaiting_filing",
    "missing",
    "filed",
    "accepted",
    "recommendation_issued",
    "replied",
    "escalated",
    "decision_issued",
]
ReviewOutcome = Literal["accept", "recommendation", "decision"]

REVIEW_STATUS: dict[ReviewOutcome, Status] = {
    "accept": "accepted",
    "recommendation": "recommendation_issued",
    "decision": "decision_issued",
}

REVIEW_ALLOWED_FROM: dict[ReviewOutcome, frozenset[str]] = {
    "accept": frozenset({"filed", "replied"}),
    "recommendation": frozenset({"filed", "missing", "replied"}),
    "decision": frozenset({"filed", "missing", "recommendation_issued", "replied", "escalated"}),
}
"""A filing must exist to be accepted; a missing one can still be answered with a letter."""


def derive_status(
    *,
    decided: bool,
    top_tier: bool | None,
    filed: bool,
    missing: bool,
    review_status: str | None,
) -> Status:
    """One status from the facts, so the order in which facts arrive does not matter."""
    if review_status:
        return review_status  # type: ignore[return-value]
    if filed:
        return "filed"
    if decided and top_tier is None:
        return "classification_needed"
    if decided and not top_tier:
        return "not_required"
    if missing:
        return "missing"
    return "awaiting_filing"


def review_refusal(status: str, outcome: ReviewOutcome) -> str | None:
    """Why ``outcome`` cannot be given now (None: it can)."""
    allowed = REVIEW_ALLOWED_FROM[outcome]
    if status in allowed:
        return None
    return f"cannot {outcome} a filing in status {status!r} (allowed from: {sorted(allowed)})"
