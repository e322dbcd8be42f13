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
INGEST_INSPECTIONS = Topic(
    "ingest.enforcement.inspections",
    6,
    "inspection plans and inspections, officer certificates, review/litigation outcomes",
)
INGEST_QUARANTINE = Topic(
    "ingest.quarantine", 1, "refused input with the reason, kept for operators", False
)
HOTLINE_EVENTS = Topic("hotline.complaint.events", 6, "complaint state changes")
CASEREVIEW_EVENTS = Topic("casereview.case.events", 6, "case review facts")
PENALTY_EVENTS = Topic("penalty.filing.events", 6, "top-tier penalties, filings, flags")
INSPECTION_EVENTS = Topic(
    "inspection.events", 6, "inspections, plans, officer registry, correction rates"
)
NOTIFY_REQUESTS = Topic("notify.requests", 6, "notices to send to units")
NOTIFY_EVENTS = Topic("notify.notice.events", 6, "notice sent/failed/acknowledged/escalated")
SUPERVISION_LEADS = Topic("supervision.leads", 3, "监督线索 raised by any service")
AUDIT_EVENTS = Topic(
    "audit.events", 3, "unmasked personal-data reads of every service, for the audit chain"
)

ALL_TOPICS: tuple[Topic, ...] = (
    INGEST_HOTLINE,
    INGEST_ENFORCEMENT,
    INGEST_INSPECTIONS,
    INGEST_QUARANTINE,
    HOTLINE_EVENTS,
    CASEREVIEW_EVENTS,
    PENALTY_EVENTS,
    INSPECTION_EVENTS,
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
    "gov.enforcement.inspection.planned": INGEST_INSPECTIONS,
    "gov.enforcement.inspection.conducted": INGEST_INSPECTIONS,
    "gov.enforcement.officer.certified": INGEST_INSPECTIONS,
    "gov.enforcement.officer.suspended": INGEST_INSPECTIONS,
    "gov.enforcement.officer.revoked": INGEST_INSPECTIONS,
    "gov.enforcement.review.decided": INGEST_INSPECTIONS,
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


# ------------------------------------------------------------------ least privilege

CONSUMES: dict[str, tuple[Topic, ...]] = {
    "gateway": (
        HOTLINE_EVENTS,
        CASEREVIEW_EVENTS,
        PENALTY_EVENTS,
        NOTIFY_EVENTS,
        INSPECTION_EVENTS,
        SUPERVISION_LEADS,
        INGEST_QUARANTINE,
        AUDIT_EVENTS,
    ),
    "hotline": (INGEST_HOTLINE, INGEST_ENFORCEMENT),
    "casereview": (INGEST_ENFORCEMENT, INSPECTION_EVENTS),
    "penalty": (INGEST_ENFORCEMENT,),
    "notify": (NOTIFY_REQUESTS,),
    "inspection": (INGEST_INSPECTIONS,),
}
"""What each service's consumers read (its consumer group is named after the service)."""

PRODUCES: dict[str, tuple[Topic, ...]] = {
    "gateway": (
        INGEST_HOTLINE,
        INGEST_ENFORCEMENT,
        INGEST_INSPECTIONS,
        INGEST_QUARANTINE,
        SUPERVISION_LEADS,
        NOTIFY_REQUESTS,  # 移送函 on a lead's disposal
    ),
    "hotline": (HOTLINE_EVENTS, SUPERVISION_LEADS, NOTIFY_REQUESTS, AUDIT_EVENTS),
    "casereview": (CASEREVIEW_EVENTS, NOTIFY_REQUESTS, SUPERVISION_LEADS, AUDIT_EVENTS),
    "penalty": (PENALTY_EVENTS, SUPERVISION_LEADS, NOTIFY_REQUESTS, AUDIT_EVENTS),
    "notify": (NOTIFY_EVENTS, AUDIT_EVENTS, SUPERVISION_LEADS),  # unanswered letters
    "inspection": (INSPECTION_EVENTS, SUPERVISION_LEADS, NOTIFY_REQUESTS, AUDIT_EVENTS),
}
"""What each service publishes through its outbox."""


def acl_plan(prefix: str = "") -> dict[str, dict[str, list[str]]]:
    """Kafka ACLs per service user: topics it may read, topics it may write, its groups.

    A consumer also writes its consumed topics' DLTs and announces refused input on
    ``ingest.quarantine``. The gateway reads every DLT (kept for operators) and may write
    every consumed topic: the operators' replay republishes a dead letter to its original
    topic. Nothing else: hotline cannot read case files' topics it does not consume, notify
    cannot publish complaint events, and so on.
    """
    plan: dict[str, dict[str, list[str]]] = {}
    for service, consumed in CONSUMES.items():
        reads = {t.qualified(prefix) for t in consumed}
        writes = {t.qualified(prefix) for t in PRODUCES[service]}
        for topic in consumed:
            if topic.dead_letter:
                writes.add(topic.dlt(prefix))
            writes.add(INGEST_QUARANTINE.qualified(prefix))
        if service == "gateway":
            dlts = {t.dlt(prefix) for t in ALL_TOPICS if t.dead_letter}
            reads |= dlts
            writes |= {t.qualified(prefix) for t in ALL_TOPICS if t.dead_letter}
        plan[service] = {
            "read": sorted(reads),
            "write": sorted(writes),
            "group": [f"{prefix}{service}"],
        }
    return plan


def kafka_acl_script(prefix: str = "", bootstrap: str = "127.0.0.1:9094") -> str:
    """A shell script (run with Kafka's CLI tools next to the broker) that creates one SCRAM
    user per service, its password read from ``/run/secrets/kafka_<service>``, and exactly
    the ACLs of :func:`acl_plan`. Idempotent: users are upserted, ACLs added again."""
    lines = [
        "#!/bin/sh",
        "# Generated by `python -m shared.cli kafka-acls` from shared/topics.py; do not edit.",
        "# One SCRAM-SHA-512 user per service with exactly its topics (least privilege).",
        "set -eu",
        f'BOOTSTRAP="${{KAFKA_ADMIN_BOOTSTRAP:-{bootstrap}}}"',
        'BIN="${KAFKA_BIN:-/opt/kafka/bin}"',
        "",
    ]
    for service, rules in acl_plan(prefix).items():
        user = f"User:{service}"
        lines += [
            f"# -- {service}",
            f'pw="$(cat /run/secrets/kafka_{service})"',
            f'"$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter --entity-type users'
            f' --entity-name {service} --add-config "SCRAM-SHA-512=[password=$pw]"',
        ]
        for topic in rules["read"]:
            lines.append(
                f'"$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --add --allow-principal'
                f" {user} --operation Read --operation Describe --topic {topic}"
            )
        for topic in rules["write"]:
            lines.append(
                f'"$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --add --allow-principal'
                f" {user} --operation Write --operation Describe --topic {topic}"
            )
        for group in rules["group"]:
            lines.append(
                f'"$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --add --allow-principal'
                f" {user} --operation Read --operation Describe --group {group}"
                " --resource-pattern-type prefixed"
            )
        lines.append("")
    return "\n".join(lines)
