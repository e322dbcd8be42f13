"""Each pre-check rule on a passing and on a failing case file (pure, no servers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from devtools.demo.generator import DemoGenerator, DemoMix
from services.casereview.domain.norms import NORMS, Severity
from services.casereview.domain.precheck import (
    RULES,
    PrecheckPolicy,
    check_registered_certificates,
    run_prechecks,
)
from shared.certificates import Certificate
from tests.casereview.cases import case, clean_file, large_file, mutate, simple_file, without_doc

POLICY = PrecheckPolicy()
CLEAN = {"general": clean_file(), "large": large_file(), "simple": simple_file()}


@pytest.mark.parametrize("kind", sorted(CLEAN))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_passes_a_clean_file(rule: str, kind: str) -> None:
    assert RULES[rule](case(CLEAN[kind]), POLICY) == []


Mutation = Callable[[], dict[str, Any]]

# rule → (failing file, expected code, severity, evidence that must be shown)
FAILING: dict[str, list[tuple[Mutation, str, Severity, dict[str, Any]]]] = {
    "documents": [
        (
            lambda: without_doc(clean_file(), "送达回证", "结案报告"),
            "DOC_MISSING",
            Severity.MAJOR,
            {"field": "documents", "missing": "送达回证"},
        ),
        (
            lambda: without_doc(simple_file(), "当场行政处罚决定书"),
            "DOC_MISSING",
            Severity.MAJOR,
            {"missing": "当场行政处罚决定书", "procedure": "simple"},
        ),
        (
            lambda: mutate(clean_file(), **{"decision.kind": "no_penalty", "decision.fine": 0}),
            "DOC_MISSING",
            Severity.MAJOR,
            {"missing": "不予行政处罚决定书"},
        ),
    ],
    "decision_time_limit": [
        (
            lambda: mutate(clean_file(), **{"dates.filed": "2024-12-01"}),
            "DECISION_LATE",
            Severity.MAJOR,
            {"filed": "2024-12-01", "decided": "2025-03-28", "days": 117},
        ),
        (
            lambda: mutate(clean_file(), **{"dates.filed": None}),
            "DECISION_TIME_UNVERIFIABLE",
            Severity.MAJOR,
            {"filed": None, "decided": "2025-03-28"},
        ),
    ],
    "service_time_limit": [
        (
            lambda: mutate(clean_file(), **{"dates.served": "2025-04-10"}),
            "SERVICE_LATE",
            Severity.MAJOR,
            {"decided": "2025-03-28", "served": "2025-04-10", "days": 8, "calendar": "working"},
        ),
        (
            lambda: mutate(clean_file(), **{"dates.served": "2025-03-27"}),
            "SERVICE_LATE",
            Severity.MAJOR,
            {"days": -1},
        ),
    ],
    "notification": [
        (
            lambda: mutate(clean_file(), **{"dates.notified": "2025-03-28"}),
            "NOTICE_AFTER_DECISION",
            Severity.CRITICAL,
            {"notified": "2025-03-28", "decided": "2025-03-28"},
        ),
        (
            lambda: mutate(clean_file(), **{"dates.notified": None}),
            "NOTICE_MISSING",
            Severity.CRITICAL,
            {"field": "dates.notified"},
        ),
    ],
    "officers": [
        (
            lambda: mutate(clean_file(), officers=clean_file()["officers"][:1]),
            "OFFICERS_TOO_FEW",
            Severity.CRITICAL,
            {"officers": ["ZF-001"], "minimum": 2},
        ),
        (  # the same officer twice is still one officer
            lambda: mutate(clean_file(), officers=clean_file()["officers"][:1] * 2),
            "OFFICERS_TOO_FEW",
            Severity.CRITICAL,
            {"officers": ["ZF-001"]},
        ),
    ],
    "certificates": [
        (
            lambda: mutate(clean_file(), **{"officers.1.cert_valid_until": "2025-03-25"}),
            "OFFICER_CERT_INVALID",
            Severity.CRITICAL,
            {
                "officer": "ZF-002",
                "cert_valid_until": "2025-03-25",
                "dates_not_covered": {"decided": "2025-03-28", "served": "2025-03-31"},
            },
        ),
        (
            lambda: mutate(clean_file(), **{"officers.0.cert_no": None}),
            "OFFICER_CERT_INVALID",
            Severity.CRITICAL,
            {"officer": "ZF-001", "cert_no": None},
        ),
    ],
    "publicity": [
        (
            lambda: mutate(clean_file(), publicity=False),
            "PUBLICITY_MISSING",
            Severity.MAJOR,
            {"field": "publicity", "value": False},
        ),
        (
            lambda: mutate(clean_file(), publicity=None),
            "PUBLICITY_MISSING",
            Severity.MAJOR,
            {"value": None},
        ),
    ],
    "recording": [
        (
            lambda: mutate(clean_file(), recording=False),
            "RECORDING_MISSING",
            Severity.MAJOR,
            {"field": "recording", "value": False},
        ),
    ],
    "legal_review": [
        (
            lambda: mutate(large_file(), legal_review=False),
            "LEGAL_REVIEW_MISSING",
            Severity.MAJOR,
            {"field": "legal_review", "value": False, "fine": 80000},
        ),
        (
            lambda: without_doc(large_file(), "法制审核意见书"),
            "LEGAL_REVIEW_MISSING",
            Severity.MAJOR,
            {"opinion_document": False},
        ),
        (  # reviewed only after the decision
            lambda: mutate(large_file(), **{"documents.10.date": "2025-03-29"}),
            "LEGAL_REVIEW_MISSING",
            Severity.MAJOR,
            {"opinion_date": "2025-03-29", "decided": "2025-03-28"},
        ),
    ],
    "hearing_notice": [
        (
            lambda: without_doc(large_file(), "听证告知书"),
            "HEARING_NOTICE_MISSING",
            Severity.MAJOR,
            {"fine": 80000, "threshold": 50000, "party_type": "business"},
        ),
        (  # an individual's threshold is lower
            lambda: mutate(clean_file(), **{"party.type": "individual", "decision.fine": 6000}),
            "HEARING_NOTICE_MISSING",
            Severity.MAJOR,
            {"threshold": 5000, "party_type": "individual"},
        ),
    ],
    "discretion_baseline": [
        (
            lambda: mutate(clean_file(), discretion_baseline=None),
            "BASELINE_NOT_CITED",
            Severity.MAJOR,
            {"field": "discretion_baseline"},
        ),
        (
            lambda: mutate(clean_file(), discretion_baseline="  "),
            "BASELINE_NOT_CITED",
            Severity.MAJOR,
            {"field": "discretion_baseline"},
        ),
    ],
    "minor_violation": [
        (
            lambda: mutate(clean_file(), circumstances=["first_offence", "minor", "corrected"]),
            "MINOR_PENALISED",
            Severity.MAJOR,
            {"matched": ["corrected", "first_offence", "minor"], "decided": "2025-03-28"},
        ),
        (  # a warning is a penalty too
            lambda: mutate(
                clean_file(),
                circumstances=["minor", "corrected", "no_harm"],
                **{"decision.kind": "warning", "decision.fine": 0},
            ),
            "MINOR_PENALISED",
            Severity.MAJOR,
            {"decision_kind": "warning"},
        ),
    ],
}


def test_every_rule_has_failing_cases() -> None:
    assert set(FAILING) == set(RULES)


@pytest.mark.parametrize(
    ("rule", "index"), [(r, i) for r, cases in sorted(FAILING.items()) for i in range(len(cases))]
)
def test_rule_flags_a_failing_file_with_rule_text_and_evidence(rule: str, index: int) -> None:
    make, code, severity, evidence = FAILING[rule][index]
    findings = RULES[rule](case(make()), POLICY)
    assert [f.code for f in findings][:1] == [code]
    f = findings[0]
    assert f.severity is severity
    assert f.rule == NORMS[code].rule and "行政处罚法" in f.source
    assert f.seeds, "each rule cites the seed policy that makes it a review point"
    for key, value in evidence.items():
        assert f.evidence[key] == value, key
    # the rule's finding is also what the whole pre-check reports
    assert code in {x.code for x in run_prechecks(case(make()), POLICY)}


def test_document_rule_reports_each_missing_document_once() -> None:
    findings = RULES["documents"](case(without_doc(clean_file(), "送达回证", "结案报告")), POLICY)
    assert sorted(f.evidence["missing"] for f in findings) == ["结案报告", "送达回证"]


def test_any_accepted_kind_satisfies_a_required_document() -> None:
    data = without_doc(clean_file(), "现场检查笔录")  # 调查询问笔录 still there
    assert RULES["documents"](case(data), POLICY) == []


def test_no_penalty_decision_needs_no_prior_notice_and_is_not_a_minor_violation() -> None:
    data = mutate(
        clean_file(),
        circumstances=["minor", "corrected", "first_offence"],
        **{"decision.kind": "no_penalty", "decision.fine": 0, "dates.notified": None},
    )
    data["documents"] = [
        d
        for d in data["documents"]
        if d["kind"] not in ("行政处罚事先告知书", "陈述申辩笔录", "行政处罚决定书")
    ] + [{"kind": "不予行政处罚决定书", "date": "2025-03-28"}]
    assert run_prechecks(case(data), POLICY) == []


def test_minor_rule_respects_aggravating_circumstances() -> None:
    data = mutate(clean_file(), circumstances=["minor", "corrected", "first_offence", "obstructed"])
    assert RULES["minor_violation"](case(data), POLICY) == []


def test_approved_extension_lifts_the_90_day_limit() -> None:
    data = mutate(
        clean_file(), **{"dates.filed": "2024-12-01"}, circumstances=["extension_approved"]
    )
    assert RULES["decision_time_limit"](case(data), POLICY) == []


def test_thresholds_come_from_the_policy() -> None:
    data = mutate(clean_file(), **{"dates.served": "2025-04-10"})  # 8 working days after
    assert RULES["service_time_limit"](case(data), PrecheckPolicy(service_limit_days=10)) == []
    assert RULES["service_time_limit"](case(data), POLICY) != []
    strict = PrecheckPolicy(large_fine_thresholds={"business": 10000})
    assert [f.code for f in RULES["hearing_notice"](case(clean_file()), strict)] == [
        "HEARING_NOTICE_MISSING"
    ]


def test_demo_feed_files_without_planted_defects_pass_and_planted_ones_are_found() -> None:
    """Cross-check with the demo generator: no false alarms on its clean case files."""
    start = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    clean_mix = DemoMix(**dict.fromkeys(DEMO_DEFECTS, 0.0))

    def files(mix: DemoMix) -> list[Any]:
        events = DemoGenerator(5, start, mix).events(100, 200)
        return [case(e.data) for _, e in events if e.type == "gov.enforcement.case.closed"]

    clean = files(clean_mix)
    assert clean and all(run_prechecks(c, POLICY) == [] for c in clean)
    found = {f.code for c in files(DemoMix()) for f in run_prechecks(c, POLICY)}
    assert {"DOC_MISSING", "OFFICERS_TOO_FEW", "PUBLICITY_MISSING"} <= found


DEMO_DEFECTS = {
    "missing_document_rate",
    "late_service_rate",
    "late_decision_rate",
    "decided_before_notice_rate",
    "expired_cert_rate",
    "single_officer_rate",
    "no_legal_review_rate",
    "no_publicity_rate",
    "no_recording_rate",
    "no_baseline_rate",
    "minor_fined_rate",
}


# ---------------------------------------------------------------- officer registry (持证上岗)


def registered(officer_id: str, cert_no: str, **over: Any) -> Certificate:
    base: dict[str, Any] = {
        "officer_id": officer_id,
        "unit": "310106-cgzf",
        "cert_no": cert_no,
        "valid_from": dt.date(2020, 1, 1),
        "valid_until": dt.date(2027, 12, 31),
    }
    return Certificate.model_validate({**base, **over})


def registry_findings(data: dict[str, Any], registry: dict[str, Certificate | None]) -> list[Any]:
    file = case(data)
    found = check_registered_certificates(file, run_prechecks(file, PrecheckPolicy()), registry)
    return [f for f in found if f.code == "OFFICER_CERT_INVALID"]


def test_the_registry_overrides_a_certificate_the_file_claims_valid() -> None:
    revoked = registered("ZF-002", "31010600456", revoked_since=dt.date(2025, 3, 15))
    (found,) = registry_findings(clean_file(), {"ZF-002": revoked})
    assert found.evidence["officer"] == "ZF-002" and found.evidence["source"] == "registry"
    assert set(found.evidence["dates_not_covered"]) == {"notified", "decided", "served"}
    assert "revoked" in found.message


def test_a_renewed_certificate_in_the_registry_clears_the_files_lapsed_one() -> None:
    lapsed = mutate(clean_file(), **{"officers.1.cert_valid_until": "2025-03-25"})
    assert registry_findings(lapsed, {}), "without the registry the file's date counts"
    renewed = registered("ZF-002", "31010600456")
    assert registry_findings(lapsed, {"ZF-002": renewed}) == []


def test_unregistered_and_mismatched_officers_are_flagged_and_valid_ones_are_not() -> None:
    registry: dict[str, Certificate | None] = {
        "ZF-001": None,
        "ZF-002": registered("ZF-002", "OTHER-NUMBER"),
    }
    found = {f.evidence["officer"]: f.message for f in registry_findings(clean_file(), registry)}
    assert "无登记" in found["ZF-001"] and "不符" in found["ZF-002"]
    valid = {"ZF-001": registered("ZF-001", "31010600123")}
    assert registry_findings(clean_file(), valid) == []


def test_seven_day_service_counts_working_days() -> None:
    """《行政处罚法》第六十一条: 当事人不在场的，行政机关应当在七日内……送达; 第八十五条: 本法中
    “二日”“三日”“五日”“七日”的规定是指工作日，不含法定节假日. Decided Fri 2025-03-28, served
    Sat 2025-04-05: Mon 03-31 … Thu 04-03 are 4 working days, 04-04…04-06 is 清明节. Not late."""
    data = mutate(clean_file(), **{"dates.served": "2025-04-05"})
    assert RULES["service_time_limit"](case(data), POLICY) == []
    last_day = mutate(clean_file(), **{"dates.served": "2025-04-09"})  # the 7th working day
    assert RULES["service_time_limit"](case(last_day), POLICY) == []


def test_every_time_limit_of_the_precheck_names_its_calendar_and_article() -> None:
    """《行政处罚法》第八十五条 makes 二日/三日/五日/七日 working days; 九十日 (第六十条) stays
    calendar days. The rule table says which applies and cites the article."""
    from services.casereview.domain.norms import TIME_LIMITS

    assert TIME_LIMITS["service_time_limit"].calendar == "working"
    assert "第八十五条" in TIME_LIMITS["service_time_limit"].source
    assert TIME_LIMITS["decision_time_limit"].calendar == "calendar"
    assert "第六十条" in TIME_LIMITS["decision_time_limit"].source


def test_a_batch_prefetches_the_officers_its_case_files_name() -> None:
    """One registry query per batch, not per file: the prefetch key lists the file's officers,
    and bad data (it runs before validation) gives none instead of raising."""
    from services.casereview.handlers.intake import officer_ids
    from shared.envelope import Envelope

    def closed(data: object) -> Envelope:
        return Envelope(type="t", source="/t", district="310101", partitionkey="k", data=data)

    good = closed({"officers": [{"id": "ZF-001"}, {"id": "ZF-002", "cert_no": "x"}]})
    assert officer_ids(good) == ["ZF-001", "ZF-002"]
    for bad in ({}, {"officers": "ZF-001"}, {"officers": [None, {"id": 7}, "x"]}):
        assert officer_ids(closed(bad)) == []
