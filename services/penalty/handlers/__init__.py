"""Event, timer and command handlers of the penalty service: glue between events, the domain
rules and storage. Every change runs inside one unit of work (transaction).

One concern a module: ``steps`` (what every handler does to a filing: save and emit, findings,
leads, notices, the deadline), ``decisions`` (处罚决定: 顶格 judgement, 过罚不当, 大额, 人工认定),
``filings`` (备案, 逾期备案, 未备案), ``anomalies`` (罚没款异常增长) and ``letters`` (备案审查:
监督建议书 / 监督决定书, 回复, 逾期通报). :class:`PenaltyWorkflow` is all of them.
"""

from __future__ import annotations

from services.penalty.handlers.decisions import Decisions
from services.penalty.handlers.letters import Letters
from services.penalty.handlers.steps import FILING_DUE, REPLY_DUE

__all__ = ["FILING_DUE", "REPLY_DUE", "PenaltyWorkflow"]


class PenaltyWorkflow(Decisions, Letters):
    """The 顶格处罚备案 process for one service instance (stateless between calls)."""
