"""The norms a pre-check finding cites (法律依据): for each finding code the legal text, its
article and the seed policies (``/work/shared/seeds``) that make it a review point; the
documents a file must hold by procedure (必备文书); the time limits of case review; and the
finding itself, which carries its norm and its evidence.

A table, no logic: the rules that produce findings are in ``precheck``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Severity(StrEnum):
    """How bad a defect is: ``critical`` ones match a veto item of the rubric."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"


@dataclass(frozen=True)
class Norm:
    """Where a rule comes from: the legal text and the seed policy that makes it a review point."""

    rule: str
    source: str
    seeds: tuple[str, ...] = ()


# Seed files (under /work/shared/seeds), cited by file name, title and phrase.
SEED_JINGAN_2025 = (
    "000_ea473ff1d8cb02b8.txt 静安区2025年行政执法监督工作计划: "
    "将行政执法三项制度、裁量权基准适用、轻微违法行为依法不予行政处罚等"
    "作为案卷评查的重点内容"
)
SEED_PUDONG_2024 = (
    "001_b348ea9af164927f.txt 浦东城管执法局贯彻落实意见: "
    "未取得行政执法证件的人员不得独立从事行政执法工作"
)
SEED_PUDONG_2024_SERVICE = (
    "001_b348ea9af164927f.txt 浦东城管执法局贯彻落实意见: "
    "对设备审核、证据审核、文书送达、陈述申辩等环节不断赋能优化"
)
SEED_OUHAI_2022 = (
    "002_8cc9de9d925df07c.txt 瓯海区2022年度行政执法监督工作计划: "
    "从执法主体认定是否正确、证据是否充分、程序是否合法、"
    "法律适用是否准确、文书制作是否规范等方面予以评定"
)
SEED_OUHAI_2022_BASELINE = (
    "002_8cc9de9d925df07c.txt 瓯海区2022年度行政执法监督工作计划: "
    "对执法人员持证亮证、行政执法“三项制度”落实、裁量基准运用、"
    "执法文书制作……等情况开展监督"
)
SEED_XIALU_FIRST_OFFENCE = (
    "003_790da149bfa28c1a.txt 下陆区分解落实通知: "
    "推行轻微违法告知承诺制，实行“首违不罚+公益减罚+轻微速罚”模式"
)
SEED_XUHUI_PUBLICITY = (
    "004_ac79eeb59e6acbf5.txt 徐汇区三项制度实施意见(一): 保證及時、準確、全面公示行政執法信息"
)
SEED_XUHUI_RECORDING = (
    "004_ac79eeb59e6acbf5.txt 徐汇区三项制度实施意见(二): 開展行政處罰……應當實施行政執法全過程記錄"
)
SEED_XUHUI_LEGAL_REVIEW = (
    "004_ac79eeb59e6acbf5.txt 徐汇区三项制度实施意见(三): "
    "本區行政執法單位對重大行政執法決定應當進行法制審核"
)

NORMS: dict[str, Norm] = {
    "DOC_MISSING": Norm(
        "案卷应当包含该程序必备的执法文书：立案审批表、调查/检查笔录、证据材料、行政处罚事先告知书、"
        "陈述申辩记录、行政处罚决定书、送达回证、结案报告（简易程序：现场笔录、当场处罚决定书、送达回证）",
        "《行政处罚法》第五十一条至第六十一条",
        (SEED_OUHAI_2022,),
    ),
    "DECISION_LATE": Norm(
        "行政机关应当自行政处罚案件立案之日起九十日内作出行政处罚决定",
        "《行政处罚法》第六十条",
        (SEED_OUHAI_2022,),
    ),
    "DECISION_TIME_UNVERIFIABLE": Norm(
        "立案日期与决定日期须载明，方能核实九十日办案期限",
        "《行政处罚法》第六十条",
        (SEED_OUHAI_2022,),
    ),
    "SERVICE_LATE": Norm(
        "行政处罚决定书应当在宣告后当场交付当事人；当事人不在场的，行政机关应当在七日内依照"
        "《中华人民共和国民事诉讼法》的有关规定送达当事人（七日指工作日，不含法定节假日）",
        "《行政处罚法》第六十一条、第八十五条",
        (SEED_PUDONG_2024_SERVICE,),
    ),
    "SERVICE_TIME_UNVERIFIABLE": Norm(
        "决定日期与送达日期须载明，方能核实七日（工作日）送达期限",
        "《行政处罚法》第六十一条、第八十五条",
        (SEED_PUDONG_2024_SERVICE,),
    ),
    "NOTICE_MISSING": Norm(
        "行政机关在作出行政处罚决定之前，应当告知当事人拟作出的行政处罚内容及事实、理由、依据，"
        "并告知当事人依法享有的陈述、申辩、要求听证等权利",
        "《行政处罚法》第四十四条、第六十二条",
        (SEED_OUHAI_2022,),
    ),
    "NOTICE_AFTER_DECISION": Norm(
        "行政机关及其执法人员在作出行政处罚决定之前，未依照本法第四十四条、第四十五条的规定向当事人"
        "告知拟作出的行政处罚内容及事实、理由、依据……不得作出行政处罚决定",
        "《行政处罚法》第四十四条、第六十二条",
        (SEED_OUHAI_2022,),
    ),
    "OFFICERS_TOO_FEW": Norm(
        "行政处罚应当由具有行政执法资格的执法人员实施。执法人员不得少于两人，法律另有规定的除外",
        "《行政处罚法》第四十二条",
        (SEED_PUDONG_2024,),
    ),
    "OFFICER_CERT_INVALID": Norm(
        "执法人员应当持有在办案期间有效的行政执法证件（持证上岗）",
        "《行政处罚法》第四十二条；《上海市行政执法证管理办法》",
        (SEED_PUDONG_2024,),
    ),
    "PUBLICITY_MISSING": Norm(
        "行政处罚的实施机关、立案依据、实施程序和救济渠道等信息应当公示；"
        "具有一定社会影响的行政处罚决定应当依法公开（行政执法公示制度）",
        "《行政处罚法》第三十九条、第四十八条",
        (SEED_XUHUI_PUBLICITY, SEED_JINGAN_2025),
    ),
    "RECORDING_MISSING": Norm(
        "行政机关应当依法以文字、音像等形式，对行政处罚的启动、调查取证、审核、决定、送达、执行等"
        "进行全过程记录，归档保存（执法全过程记录制度）",
        "《行政处罚法》第四十七条",
        (SEED_XUHUI_RECORDING, SEED_JINGAN_2025),
    ),
    "LEGAL_REVIEW_MISSING": Norm(
        "有下列情形之一，在行政机关负责人作出行政处罚的决定之前，应当由从事行政处罚决定法制审核的人员"
        "进行法制审核；未经法制审核或者审核未通过的，不得作出决定（重大执法决定法制审核制度）",
        "《行政处罚法》第五十八条",
        (SEED_XUHUI_LEGAL_REVIEW, SEED_JINGAN_2025),
    ),
    "HEARING_NOTICE_MISSING": Norm(
        "行政机关拟作出较大数额罚款、没收较大数额违法所得、吊销许可证件、责令停产停业等行政处罚决定，"
        "应当告知当事人有要求听证的权利",
        "《行政处罚法》第六十三条、第六十四条",
        (SEED_OUHAI_2022,),
    ),
    "BASELINE_NOT_CITED": Norm(
        "行政机关可以依法制定行政处罚裁量基准，规范行使行政处罚裁量权；案卷应载明所适用的裁量基准",
        "《行政处罚法》第三十四条",
        (SEED_OUHAI_2022_BASELINE, SEED_JINGAN_2025),
    ),
    "MINOR_PENALISED": Norm(
        "违法行为轻微并及时改正，没有造成危害后果的，不予行政处罚。"
        "初次违法且危害后果轻微并及时改正的，可以不予行政处罚",
        "《行政处罚法》第三十三条",
        (SEED_JINGAN_2025, SEED_XIALU_FIRST_OFFENCE),
    ),
}


@dataclass(frozen=True)
class TimeLimit:
    """A time limit a rule checks: how its days are counted, and the article that says so."""

    calendar: str  # "calendar" (自然日) or "working" (工作日)
    source: str


TIME_LIMITS: dict[str, TimeLimit] = {
    "decision_time_limit": TimeLimit(
        "calendar",
        "《行政处罚法》第六十条：自立案之日起九十日内作出决定（九十日不在第八十五条所列，按自然日）",
    ),
    "service_time_limit": TimeLimit(
        "working",
        "《行政处罚法》第六十一条：七日内送达；第八十五条：“七日”指工作日，不含法定节假日",
    ),
    "rectification": TimeLimit(
        "calendar",
        "002_8cc9de9d925df07c.txt 瓯海区2022年度行政执法监督工作计划：对评查反馈函反映的问题"
        "予以整改落实，提交书面整改报告（未定期限：JIANDU_RECTIFICATION_DAYS 自然日）",
    ),
}
"""Every time limit of case review, by name: calendar or working days, and why."""


class Finding(BaseModel):
    """One defect found in a case file, with the norm it breaks and the evidence."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    rule: str
    source: str
    seeds: list[str] = []
    evidence: dict[str, Any]


def finding(code: str, severity: Severity, message: str, **evidence: Any) -> Finding:
    norm = NORMS[code]
    return Finding(
        code=code,
        severity=severity,
        message=message,
        rule=norm.rule,
        source=norm.source,
        seeds=list(norm.seeds),
        evidence=evidence,
    )


# ---------------------------------------------------------------- required documents

DocGroup = tuple[str, tuple[str, ...]]
"""(what the file must hold, the document kinds that satisfy it)."""

RECORD = ("调查/检查笔录", ("现场检查笔录", "调查询问笔录", "勘验笔录", "检查笔录", "询问笔录"))
EVIDENCE = ("证据材料", ("证据材料", "证据", "证据清单"))
FILING = ("立案审批表", ("立案审批表", "立案登记表"))
SERVICE = ("送达回证", ("送达回证",))
CLOSING = ("结案报告", ("结案报告", "结案审批表"))

GENERAL_PENALTY_DOCS: tuple[DocGroup, ...] = (
    FILING,
    RECORD,
    EVIDENCE,
    ("行政处罚事先告知书", ("行政处罚事先告知书", "事先告知书")),
    ("陈述申辩记录", ("陈述申辩笔录", "陈述申辩记录", "陈述申辩书", "放弃陈述申辩声明")),
    ("行政处罚决定书", ("行政处罚决定书",)),
    SERVICE,
    CLOSING,
)
GENERAL_NO_PENALTY_DOCS: tuple[DocGroup, ...] = (
    FILING,
    RECORD,
    EVIDENCE,
    ("不予行政处罚决定书", ("不予行政处罚决定书",)),
    SERVICE,
    CLOSING,
)
SIMPLE_DOCS: tuple[DocGroup, ...] = (
    ("现场笔录", ("现场检查笔录", "现场笔录")),
    ("当场行政处罚决定书", ("当场行政处罚决定书", "行政处罚决定书")),
    SERVICE,
)
HEARING_NOTICE_KINDS = ("听证告知书", "行政处罚听证告知书")
LEGAL_REVIEW_KINDS = ("法制审核意见书", "法制审核意见", "重大执法决定法制审核意见书")
