"""Event, timer and command handlers of the hotline service: glue between events, the domain
rules and storage. Every change runs inside one unit of work (transaction).

One concern a module: ``steps`` (what every handler does to a complaint), ``detectors``
(推诿, 属地推责, 高频投诉, 重复件), ``commands`` (签收 … 评价, and dispatch), ``intake`` (work
orders, platform updates, closed cases, prefetch keys), ``timers`` (签收超时, 办结超期, 通报,
应立尽立) and ``catalogue`` (the routing catalogue). :class:`HotlineWorkflow` is all of them.
"""

from __future__ import annotations

from services.hotline.handlers.catalogue import RoutingCatalogueEditor
from services.hotline.handlers.intake import WorkOrderIntake
from services.hotline.handlers.steps import ACK_DUE, CASE_CHECK, ESCALATE, RESOLVE_DUE, Acting
from services.hotline.handlers.timers import DeadlineTimers

__all__ = ["ACK_DUE", "CASE_CHECK", "ESCALATE", "RESOLVE_DUE", "Acting", "HotlineWorkflow"]


class HotlineWorkflow(WorkOrderIntake, DeadlineTimers, RoutingCatalogueEditor):
    """The 12345 complaint process for one service instance (stateless between calls)."""
