"""Case files for the casereview tests: a clean one, a large one, and mutations."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from shared.contracts import CaseClosed
from shared.envelope import Envelope

GENERAL_DOCS = [
    ("立案审批表", "2025-03-03"),
    ("现场检查笔录", "2025-03-01"),
    ("调查询问笔录", "2025-03-05"),
    ("证据材料", "2025-03-05"),
    ("行政处罚事先告知书", "2025-03-20"),
    ("陈述申辩笔录", "2025-03-22"),
    ("行政处罚决定书", "2025-03-28"),
    ("送达回证", "2025-03-31"),
    ("结案报告", "2025-04-10"),
]


def clean_file(
    case_id: str = "310106-cgzf-2025-000001", unit: str = "310106-cgzf"
) -> dict[str, Any]:
    """A general-procedure fine below the large-fine threshold that passes every rule."""
    return {
        "case_id": case_id,
        "unit": unit,
        "district": unit[:6],
        "procedure": "general",
        "matter": "占道经营",
        "legal_provisions": ["《上海市市容环境卫生管理条例》第二十三条"],
        "party": {"type": "business", "name": "上海某某餐饮有限公司", "id": "91310106MA1FL0XX1X"},
        "dates": {
            "discovered": "2025-03-01",
            "filed": "2025-03-03",
            "notified": "2025-03-20",
            "decided": "2025-03-28",
            "served": "2025-03-31",
            "closed": "2025-04-10",
        },
        "officers": [
            {"id": "ZF-001", "cert_no": "31010600123", "cert_valid_until": "2026-12-31"},
            {"id": "ZF-002", "cert_no": "31010600456", "cert_valid_until": "2027-06-30"},
        ],
        "documents": [{"kind": k, "date": d} for k, d in GENERAL_DOCS],
        "decision": {"kind": "fine", "fine": 20000, "confiscation": 0},
        "circumstances": ["cooperative"],
        "discretion_baseline": "《上海市城管执法系统行政处罚裁量基准》",
        "legal_review": False,
        "hearing": False,
        "publicity": True,
        "recording": True,
    }


def large_file(**kw: Any) -> dict[str, Any]:
    """A 较大数额 fine with its hearing notice and legal review: also clean."""
    data = clean_file(**kw)
    data["decision"]["fine"] = 80000
    data["legal_review"] = True
    data["documents"] += [
        {"kind": "听证告知书", "date": "2025-03-20"},
        {"kind": "法制审核意见书", "date": "2025-03-27"},
    ]
    return data


def simple_file(**kw: Any) -> dict[str, Any]:
    """A 简易程序 (on-the-spot) fine that passes every rule."""
    data = clean_file(**kw)
    data["procedure"] = "simple"
    data["decision"]["fine"] = 50
    data["dates"] = {
        "discovered": "2025-03-01",
        "decided": "2025-03-01",
        "served": "2025-03-01",
        "closed": "2025-03-02",
    }
    data["documents"] = [
        {"kind": k, "date": "2025-03-01"}
        for k in ("现场检查笔录", "当场行政处罚决定书", "送达回证")
    ]
    return data


def mutate(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy with dotted-path changes, e.g. ``mutate(d, **{"dates.served": None})``."""
    out = copy.deepcopy(data)
    for path, value in changes.items():
        *head, last = (int(k) if k.isdigit() else k for k in path.split("."))
        target = out
        for key in head:
            target = target[key]
        target[last] = value
    return out


def without_doc(data: dict[str, Any], *kinds: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    out["documents"] = [d for d in out["documents"] if d["kind"] not in kinds]
    return out


def case(data: dict[str, Any]) -> CaseClosed:
    return CaseClosed.model_validate(data)


def closed_event(data: dict[str, Any], event_id: str | None = None) -> Envelope:
    extra = {"id": event_id} if event_id else {}
    return Envelope(
        type="gov.enforcement.case.closed",
        source="/gov/enforcement/310106",
        subject=f"case/{data['case_id']}",
        district=data["district"],
        partitionkey=data["case_id"],
        time=dt.datetime(2025, 4, 10, 9, tzinfo=dt.UTC),
        data=data,
        **extra,
    )
