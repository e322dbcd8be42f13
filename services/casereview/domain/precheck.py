"""Automatic pre-check (自动预检) of a closed case file: pure rules, no I/O.

Each rule reads a :class:`~shared.contracts.CaseClosed` and returns findings. A finding says
what is wrong (``code``, ``severity``), which norm says so (``rule`` text and ``source``; the
seed policy in ``/work/shared/seeds`` that makes it a review point, where there is one) and
the evidence (the field and the dates it looked at), so a reviewer can confirm it in seconds.

The rules follow 《中华人民共和国行政处罚法》(2021) and the review priorities of the seed
plans: "将行政执法三项制度、裁量权基准适用、轻微违法行为依法不予行政处罚等作为案卷评查的重点内容"
(静安区司法局《2025年静安区行政执法监督工作计划》). The norms each finding cites are in ``norms``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.casereview.domain.norms import (
    GENERAL_NO_PENALTY_DOCS,
    GENERAL_PENALTY_DOCS,
    HEARING_NOTICE_KINDS,
    LEGAL_REVIEW_KINDS,
    SIMPLE_DOCS,
    TIME_LIMITS,
    DocGroup,
    Finding,
    Severity,
    finding,
)
from shared.certificates import Certificate
from shared.contracts import CaseClosed
from shared.workcalendar import working_days_between


@dataclass(frozen=True)
class PrecheckPolicy:
    """The thresholds the rules use (from the service settings)."""

    decision_limit_days: int = 90
    service_limit_days: int = 7
    min_officers: int = 2
    large_fine_thresholds: Mapping[str, float] = field(
        default_factory=lambda: {"individual": 5000.0, "business": 50000.0, "other": 50000.0}
    )
    hearing_decision_kinds: frozenset[str] = frozenset(
        {"revoke_license", "lower_qualification", "suspend_business", "order_closure"}
    )
    no_penalty_kinds: frozenset[str] = frozenset({"no_penalty"})


def is_penalty(case: CaseClosed, policy: PrecheckPolicy) -> bool:
    return case.decision.kind not in policy.no_penalty_kinds


def is_large(case: CaseClosed, policy: PrecheckPolicy) -> bool:
    """较大数额罚款/没收 for this party type, or a decision that always carries a hearing."""
    threshold = policy.large_fine_thresholds.get(case.party.type, float("inf"))
    return (
        case.decision.fine >= threshold
        or case.decision.confiscation >= threshold
        or case.decision.kind in policy.hearing_decision_kinds
    )


def required_documents(case: CaseClosed, policy: PrecheckPolicy) -> tuple[DocGroup, ...]:
    if case.procedure == "simple":
        return SIMPLE_DOCS
    return GENERAL_PENALTY_DOCS if is_penalty(case, policy) else GENERAL_NO_PENALTY_DOCS


def _kinds(case: CaseClosed) -> set[str]:
    return {d.kind.strip() for d in case.documents}


def _doc_date(case: CaseClosed, kinds: Iterable[str]) -> dt.date | None:
    wanted = set(kinds)
    dates = [d.date for d in case.documents if d.kind.strip() in wanted and d.date]
    return min(dates) if dates else None


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


# ---------------------------------------------------------------- the rules


def check_documents(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """必备文书: one finding per missing document of the case's procedure."""
    present = _kinds(case)
    return [
        finding(
            "DOC_MISSING",
            Severity.MAJOR,
            f"案卷缺少{name}",
            field="documents",
            missing=name,
            accepted_kinds=list(kinds),
            procedure=case.procedure,
            decision_kind=case.decision.kind,
            present=sorted(present),
        )
        for name, kinds in required_documents(case, policy)
        if not present.intersection(kinds)
    ]


def _unverifiable(code: str, message: str, **dates: dt.date | None) -> list[Finding]:
    """A time limit that cannot be checked: a date it counts from or to is missing."""
    evidence = {name: _iso(day) for name, day in dates.items()}
    return [finding(code, Severity.MAJOR, message, field="dates", **evidence)]


def check_decision_time_limit(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """九十日办案期限 (general procedure): filed → decided, unless an extension is recorded."""
    if case.procedure != "general":
        return []
    filed, decided = case.dates.filed, case.dates.decided
    if filed is None or decided is None:
        message = "立案或决定日期缺失，无法核实办案期限"
        return _unverifiable("DECISION_TIME_UNVERIFIABLE", message, filed=filed, decided=decided)
    days = (decided - filed).days
    if days <= policy.decision_limit_days or "extension_approved" in case.circumstances:
        return []
    return [
        finding(
            "DECISION_LATE",
            Severity.MAJOR,
            f"立案后{days}日才作出决定，超过{policy.decision_limit_days}日",
            field="dates.decided",
            filed=_iso(filed),
            decided=_iso(decided),
            days=days,
            limit_days=policy.decision_limit_days,
        )
    ]


def check_service_time_limit(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """七日送达: decided → served, in working days (第八十五条; holidays and 调休 aware)."""
    decided, served = case.dates.decided, case.dates.served
    if decided is None or served is None:
        message = "决定或送达日期缺失，无法核实送达期限"
        return _unverifiable("SERVICE_TIME_UNVERIFIABLE", message, decided=decided, served=served)
    calendar_days = (served - decided).days
    days = working_days_between(decided, served)
    if 0 <= calendar_days and days <= policy.service_limit_days:
        return []
    message = (
        f"决定后第{days}个工作日才送达，超过{policy.service_limit_days}个工作日"
        if calendar_days >= 0
        else "送达日期早于决定日期"
    )
    return [
        finding(
            "SERVICE_LATE",
            Severity.MAJOR,
            message,
            field="dates.served",
            decided=_iso(decided),
            served=_iso(served),
            days=days if calendar_days >= 0 else calendar_days,
            calendar_days=calendar_days,
            calendar=TIME_LIMITS["service_time_limit"].calendar,
            limit_days=policy.service_limit_days,
        )
    ]


def check_notification(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """事先告知 before the decision (general procedure, a penalty decided)."""
    if case.procedure != "general" or not is_penalty(case, policy):
        return []
    notified, decided = case.dates.notified, case.dates.decided
    if notified is None:
        return [
            finding(
                "NOTICE_MISSING",
                Severity.CRITICAL,
                "未记载事先告知日期，不能证明决定前已告知当事人",
                field="dates.notified",
                notified=None,
                decided=_iso(decided),
            )
        ]
    if decided is not None and notified >= decided:
        return [
            finding(
                "NOTICE_AFTER_DECISION",
                Severity.CRITICAL,
                "事先告知晚于或同日于处罚决定，当事人未能在决定前陈述申辩",
                field="dates.notified",
                notified=_iso(notified),
                decided=_iso(decided),
            )
        ]
    return []


def check_officers(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """执法人员不得少于两人."""
    ids = sorted({o.id for o in case.officers})
    if len(ids) >= policy.min_officers:
        return []
    return [
        finding(
            "OFFICERS_TOO_FEW",
            Severity.CRITICAL,
            f"执法人员{len(ids)}人，少于{policy.min_officers}人",
            field="officers",
            officers=ids,
            minimum=policy.min_officers,
        )
    ]


def case_act_dates(case: CaseClosed) -> dict[str, dt.date]:
    """The dates officers act on (discovery to service): a certificate must cover them all."""
    d = case.dates
    acts = {
        "discovered": d.discovered,
        "filed": d.filed,
        "notified": d.notified,
        "decided": d.decided,
        "served": d.served,
    }
    return {k: v for k, v in acts.items() if v is not None}


def check_certificates(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """持证上岗: every officer's certificate exists and is valid on every act date."""
    acts = case_act_dates(case)
    last_name, last_day = max(acts.items(), key=lambda kv: kv[1]) if acts else ("", None)
    out: list[Finding] = []
    for officer in case.officers:
        if not officer.cert_no or officer.cert_valid_until is None:
            out.append(
                finding(
                    "OFFICER_CERT_INVALID",
                    Severity.CRITICAL,
                    f"执法人员{officer.id}未记载执法证号或有效期",
                    field="officers",
                    officer=officer.id,
                    cert_no=officer.cert_no,
                    cert_valid_until=_iso(officer.cert_valid_until),
                )
            )
        elif last_day is not None and officer.cert_valid_until < last_day:
            lapsed = sorted(k for k, v in acts.items() if v > officer.cert_valid_until)
            out.append(
                finding(
                    "OFFICER_CERT_INVALID",
                    Severity.CRITICAL,
                    f"执法人员{officer.id}的执法证于{officer.cert_valid_until}到期，"
                    f"晚于到期日仍参与办案（{last_name} {last_day}）",
                    field="officers",
                    officer=officer.id,
                    cert_no=officer.cert_no,
                    cert_valid_until=_iso(officer.cert_valid_until),
                    dates_not_covered={k: acts[k].isoformat() for k in lapsed},
                )
            )
    return out


def check_registered_certificates(
    case: CaseClosed, findings: list[Finding], registry: Mapping[str, Certificate | None]
) -> list[Finding]:
    """持证上岗 against the officer registry instead of the certificate the file records.

    For every officer the registry knows (``registry`` maps officer id → certificate, or
    ``None`` for one seen but never certified), the file's own certificate findings are
    replaced by the registry's verdict: a certificate valid on every act date, not suspended
    or revoked then, and the number the file names. Officers the registry does not know are
    judged on the file as before.
    """
    known = {o.id for o in case.officers if o.id in registry}
    out = [
        f
        for f in findings
        if not (f.code == "OFFICER_CERT_INVALID" and f.evidence.get("officer") in known)
    ]
    acts = case_act_dates(case)
    for officer in case.officers:
        if officer.id not in known:
            continue
        certificate = registry[officer.id]
        if certificate is None:
            problem = "无登记的行政执法证件"
            bad = dict(acts)
        elif officer.cert_no and officer.cert_no != certificate.cert_no:
            problem = f"案卷记载的证号{officer.cert_no}与登记证号{certificate.cert_no}不符"
            bad = dict(acts)
        else:
            bad = {k: v for k, v in acts.items() if not certificate.valid_on(v)}
            if not bad:
                continue
            statuses = sorted({certificate.status_on(v) for v in bad.values()})
            problem = f"执法证{certificate.cert_no}在办案期间无效（{'、'.join(statuses)}）"
        out.append(
            finding(
                "OFFICER_CERT_INVALID",
                Severity.CRITICAL,
                f"执法人员{officer.id}{problem}（据执法人员资格登记）",
                field="officers",
                officer=officer.id,
                cert_no=officer.cert_no,
                source="registry",
                registered_cert_no=certificate.cert_no if certificate else None,
                dates_not_covered={k: v.isoformat() for k, v in bad.items()},
            )
        )
    return out


def _not_recorded(
    code: str, message: str, attribute: str, value: bool | None, **dates: str | None
) -> list[Finding]:
    """A 三项制度 duty the file must record as done; anything but ``True`` is a finding."""
    if value is True:
        return []
    return [finding(code, Severity.MAJOR, message, field=attribute, value=value, **dates)]


def check_publicity(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """三项制度 (1): 行政执法公示."""
    return _not_recorded(
        "PUBLICITY_MISSING",
        "未记录行政执法公示",
        "publicity",
        case.publicity,
        decided=_iso(case.dates.decided),
    )


def check_recording(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """三项制度 (2): 执法全过程记录."""
    return _not_recorded(
        "RECORDING_MISSING",
        "未记录执法全过程记录（音像记录）",
        "recording",
        case.recording,
        discovered=_iso(case.dates.discovered),
    )


def check_legal_review(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """三项制度 (3): 重大执法决定法制审核, before the decision, with its written opinion."""
    if case.procedure != "general" or not is_penalty(case, policy) or not is_large(case, policy):
        return []
    opinion = _doc_date(case, LEGAL_REVIEW_KINDS)
    has_opinion = bool(_kinds(case).intersection(LEGAL_REVIEW_KINDS))
    decided = case.dates.decided
    evidence: dict[str, Any] = {
        "field": "legal_review",
        "value": case.legal_review,
        "opinion_document": has_opinion,
        "opinion_date": _iso(opinion),
        "decided": _iso(decided),
        "fine": case.decision.fine,
        "confiscation": case.decision.confiscation,
        "decision_kind": case.decision.kind,
        "party_type": case.party.type,
    }
    if case.legal_review is not True or not has_opinion:
        return [
            finding(
                "LEGAL_REVIEW_MISSING",
                Severity.MAJOR,
                "重大执法决定未见法制审核（或缺法制审核意见书）",
                **evidence,
            )
        ]
    if opinion is not None and decided is not None and opinion > decided:
        return [
            finding(
                "LEGAL_REVIEW_MISSING",
                Severity.MAJOR,
                "法制审核晚于处罚决定",
                **evidence,
            )
        ]
    return []


def check_hearing_notice(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """听证告知 for large fines (threshold per party type, from the settings)."""
    if case.procedure != "general" or not is_penalty(case, policy) or not is_large(case, policy):
        return []
    if _kinds(case).intersection(HEARING_NOTICE_KINDS):
        return []
    return [
        finding(
            "HEARING_NOTICE_MISSING",
            Severity.MAJOR,
            "较大数额罚款或重大处罚未告知听证权利",
            field="documents",
            missing="听证告知书",
            fine=case.decision.fine,
            confiscation=case.decision.confiscation,
            decision_kind=case.decision.kind,
            party_type=case.party.type,
            threshold=policy.large_fine_thresholds.get(case.party.type),
            notified=_iso(case.dates.notified),
        )
    ]


def check_discretion_baseline(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """裁量基准: the file cites the baseline it applied."""
    if case.discretion_baseline and case.discretion_baseline.strip():
        return []
    return [
        finding(
            "BASELINE_NOT_CITED",
            Severity.MAJOR,
            "未引用行政处罚裁量基准",
            field="discretion_baseline",
            value=case.discretion_baseline,
            decision_kind=case.decision.kind,
            fine=case.decision.fine,
        )
    ]


MINOR_SETS: tuple[frozenset[str], ...] = (
    frozenset({"minor", "corrected", "no_harm"}),  # 轻微 + 及时改正 + 无危害后果: 不予处罚
    frozenset({"first_offence", "minor", "corrected"}),  # 首违 + 后果轻微 + 及时改正: 可以不罚
)
AGGRAVATING = frozenset({"repeat_offence", "obstructed", "serious_harm"})


def check_minor_violation(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    """轻微违法不予处罚 / 首违不罚: a penalty although the circumstances call for none."""
    if not is_penalty(case, policy):
        return []
    circumstances = set(case.circumstances)
    if circumstances & AGGRAVATING:
        return []
    matched = next((s for s in MINOR_SETS if s <= circumstances), None)
    if matched is None:
        return []
    return [
        finding(
            "MINOR_PENALISED",
            Severity.MAJOR,
            "轻微违法/首次违法且及时改正，仍予处罚，未说明理由",
            field="decision",
            circumstances=sorted(circumstances),
            matched=sorted(matched),
            decision_kind=case.decision.kind,
            fine=case.decision.fine,
            decided=_iso(case.dates.decided),
        )
    ]


Rule = Callable[[CaseClosed, PrecheckPolicy], list[Finding]]

RULES: dict[str, Rule] = {
    "documents": check_documents,
    "decision_time_limit": check_decision_time_limit,
    "service_time_limit": check_service_time_limit,
    "notification": check_notification,
    "officers": check_officers,
    "certificates": check_certificates,
    "publicity": check_publicity,
    "recording": check_recording,
    "legal_review": check_legal_review,
    "hearing_notice": check_hearing_notice,
    "discretion_baseline": check_discretion_baseline,
    "minor_violation": check_minor_violation,
}
"""Every pre-check rule, by name; :func:`run_prechecks` applies them all in this order."""


def run_prechecks(case: CaseClosed, policy: PrecheckPolicy) -> list[Finding]:
    return [f for rule in RULES.values() for f in rule(case, policy)]
