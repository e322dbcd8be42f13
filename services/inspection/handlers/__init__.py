"""Event handlers of the inspection service: glue between events, the rules and storage.

Every change runs inside one unit of work (transaction); every flag, lead and notice id is
derived from a business key, so a redelivered or resent event never doubles anything.

One concern a module: ``findings`` (announcements, a finding raised as a lead), ``rates``
(持证率, 被纠错率), ``plans`` (检查计划备案), ``inspections`` (涉企检查 and its rules),
``officers`` (执法人员资格), ``reviews`` (复议/诉讼 outcomes) and ``prefetch`` (what a batch
reads). :class:`InspectionWorkflow` is all of them.
"""

from __future__ import annotations

from services.inspection.handlers.findings import EVENT_PREFIX, EVENT_VERBS
from services.inspection.handlers.inspections import InspectionRecords
from services.inspection.handlers.officers import OfficerRegistry
from services.inspection.handlers.plans import PlanFiling
from services.inspection.handlers.prefetch import batch_reads
from services.inspection.handlers.reviews import ReviewOutcomes

__all__ = ["EVENT_PREFIX", "EVENT_VERBS", "InspectionWorkflow", "batch_reads"]


class InspectionWorkflow(PlanFiling, InspectionRecords, OfficerRegistry, ReviewOutcomes):
    """Supervision of inspections, officers and corrections (stateless between calls)."""
