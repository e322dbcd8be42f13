"""Every topic of the platform, in one place: name, partitions, and its dead-letter twin.

Partition counts follow the sizing in README ("Partition plan"); keys are entity ids,
so one complaint's (case's, filing's) events stay ordered on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass

DLT_SUFFIX = ".dlt"


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    description: str
    dead_letter: bool = True

    def qualified(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def dlt(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}{DLT_SUFFIX}"


INGEST_HOTLINE = Topic("ingest.hotline.workorders", 6, "12345 work orders (created/updated)")
INGEST_ENFORCEMENT = Topic(
    "ingest.enforcement.cases", 6, "case system: case closed, penalty decided/filed"
)
INGEST_QUARANTINE = Topic(
    "ingest.quarantine", 1, "refused input with the reason, kept for operators", False
)
HOTLINE_EVENTS = Topic("hotline.complaint.events", 6, "complaint state changes")
CASEREVIEW_EVENTS = Topic("casereview.case.events", 6, "case review facts")
PENALTY_EVENTS = Topic("penalty.filing.events", 6, "top-tier penalties, filings, flags")
NOTIFY_REQUESTS = Topic("notify.requests", 6, "notices to send to units")
NOTIFY_EVENTS = Topic("notify.notice.events", 6, "notice sent/failed/acknowledged/escalated")
SUPERVISION_LEADS = Topic("supervision.leads", 3, "监督线索 raised by any service")
AUDIT_EVENTS = Topic(
    "audit.events", 3, "unmasked personal-data reads of every service, for the audit chain"
)

ALL_TOPICS: tuple[Topic, ...] = (
    INGEST_HOTLINE,
    INGEST_ENFORCEMENT,
    INGEST_QUARANTINE,
    HOTLINE_EVENTS,
    CASEREVIEW_EVENTS,
    PENALTY_EVENTS,
    NOTIFY_REQUESTS,
    NOTIFY_EVENTS,
    SUPERVISION_LEADS,
    AUDIT_EVENTS,
)

EXTERNAL_TYPE_TOPICS: dict[str, Topic] = {
    "gov.12345.workorder.created": INGEST_HOTLINE,
    "gov.12345.workorder.updated": INGEST_HOTLINE,
    "gov.enforcement.case.closed": INGEST_ENFORCEMENT,
    "gov.enforcement.penalty.decided": INGEST_ENFORCEMENT,
    "gov.enforcement.penalty.filed": INGEST_ENFORCEMENT,
}
"""Where the gateway puts each accepted external event type."""


def topic_plan(prefix: str = "") -> dict[str, int]:
    """Every topic to create (with DLTs) → partitions."""
    plan: dict[str, int] = {}
    for topic in ALL_TOPICS:
        plan[topic.qualified(prefix)] = topic.partitions
        if topic.dead_letter:
            plan[topic.dlt(prefix)] = 1
    return plan
