"""Event handlers: the gateway's own projections of the other services' events.

Each entity event updates the entity's latest snapshot and appends to the feed (the page of
the batch's transaction; the entity's timeline reads it too) with the trace id of the record
(the consumer span is a child of the producer's trace, so the current span's trace id is the
trace the event belongs to). Leads, quarantine announcements and raw
dead letters get their own collections.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from pymongo import UpdateOne

from services.gateway import storage
from services.gateway.domain.export import month_of
from services.gateway.domain.projections import (
    ENTITIES,
    EntityKind,
    apply_event,
    timeline_entry,
    unpack,
)
from shared.api import AUDIT_READ_TYPE
from shared.consumer import QUARANTINE_TYPE, EventConsumer, KeyOf, apply_batch, data_key
from shared.contracts import LEAD_TYPE, SupervisionLead, parse_data
from shared.envelope import Envelope
from shared.identity import mask_text
from shared.service import Service
from shared.topics import ALL_TOPICS, AUDIT_EVENTS, INGEST_QUARANTINE, SUPERVISION_LEADS, Topic
from shared.unit_of_work import Lookup, UnitOfWork

Handler = Callable[[Envelope, UnitOfWork], Any]


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _snapshot(kind: EntityKind, event: Envelope) -> dict[str, Any] | None:
    snapshot = event.data.get(kind.name) if isinstance(event.data, dict) else None
    return snapshot if isinstance(snapshot, dict) else None


def _kind_of(kinds: list[EntityKind], event: Envelope) -> EntityKind:
    """Which of a topic's entity kinds an event is about (by its type)."""
    return next((k for k in kinds if event.type.startswith(k.event_type(""))), kinds[0])


def entity_key(kinds: list[EntityKind], collection: str) -> KeyOf:
    """The entity of ``collection`` an event changes (as :func:`unpack` reads it); another
    kind's event on the same topic names its own id, which simply finds nothing here."""

    def key_of(event: Envelope) -> Any:
        kind = _kind_of(kinds, event)
        snapshot = _snapshot(kind, event) if kind.collection == collection else None
        entity_id = snapshot.get("id") if snapshot else None
        return str(entity_id or event.partitionkey)

    return key_of


def subject_key(kinds: list[EntityKind]) -> KeyOf:
    """The subject an entity's ingested events name (see ``on_entity_event``)."""

    def key_of(event: Envelope) -> Any:
        snapshot = _snapshot(_kind_of(kinds, event), event) or {}
        return str(snapshot.get("subject_id") or snapshot.get("id") or event.partitionkey)

    return key_of


def entity_handler(kind: EntityKind) -> Handler:
    async def on_entity_event(event: Envelope, uow: UnitOfWork) -> None:
        ev = unpack(kind, event, current_trace_id())
        entities = uow.documents(kind.collection)
        current = await entities.get(ev.entity_id)
        doc = apply_event(current, ev)
        if current is None:  # which ingested events (and keys) it came from: clients find theirs
            subject_id = str(ev.snapshot.get("subject_id") or ev.entity_id)
            sources = await storage.accepted_from(uow, subject_id)
            doc["subject_id"] = subject_id
            doc["event_ids"] = [s["_id"] for s in sources]
            doc["key_ids"] = sorted({s["key_id"] for s in sources if s.get("key_id")})
        entities.put(doc)
        # once per event: the consumer's inbox already refused a redelivery
        await storage.append_to_feed(uow, timeline_entry(ev))

    on_entity_event.__name__ = f"on_{kind.name}_event"
    return on_entity_event


async def on_lead(event: Envelope, uow: UnitOfWork) -> None:
    """A 监督线索: kept open until a supervisor disposes of it; a re-raise changes nothing."""
    lead = parse_data(event, SupervisionLead)
    doc = lead.model_dump(mode="python")
    doc["kind"] = lead.kind.value
    doc["month"] = month_of(lead.raised_at)
    doc.pop("lead_id")
    leads = uow.documents(storage.LEADS)
    if await leads.get(lead.lead_id) is None:
        # Which ingested events (and API keys) the lead's subject came from: clients find theirs.
        sources = await storage.accepted_from(uow, lead.subject_id)
        doc["event_ids"] = [s["_id"] for s in sources]
        doc["key_ids"] = sorted({s["key_id"] for s in sources if s.get("key_id")})
        leads.add({"_id": lead.lead_id, **doc, "status": "open", "trace_id": current_trace_id()})
    await storage.append_to_feed(  # once per event: the inbox refused a redelivery
        uow,
        {
            "_id": event.id,
            "entity": "lead",
            "entity_id": lead.lead_id,
            "type": event.type,
            "verb": "raised",
            "time": event.time,
            "district": lead.district,
            "unit": lead.unit,
            "status": "open",
            "change": {"kind": lead.kind.value, "summary": lead.summary},
            "trace_id": current_trace_id(),
        },
    )


async def on_quarantined(event: Envelope, uow: UnitOfWork) -> None:
    """Refused input announced by any consumer: one place for operators to look."""
    doc: dict[str, Any] = {k: v for k, v in event.data.items() if k != "_id"}
    doc.update(
        _id=event.subject or event.partitionkey,
        district=event.district,
        at=event.time,
        announced_by=event.source,
    )
    await storage.upsert_quarantine(uow, doc)


async def on_audit_read(event: Envelope, uow: UnitOfWork) -> None:
    """An unmasked personal-data read served by another service: chained into the audit
    log like the gateway's own reads (who, what, when, where)."""
    data = event.data
    await storage.append_audit_in(
        uow,
        at=event.time,
        actor=str(data.get("actor")),
        role=str(data.get("role")),
        action="read",
        resource=f"{data.get('service')}:{data.get('path')}",
        resource_ids=[str(i) for i in data.get("resource_ids") or []],
        district=data.get("district"),
        personal_data=True,
        details={
            "service": data.get("service"),
            "method": data.get("method"),
            "path": data.get("path"),
            "unit": data.get("unit"),
            "event_id": event.id,
            "source": event.source,
        },
    )


def _text(value: bytes | None, limit: int = 65536) -> str:
    return (value or b"")[:limit].decode("utf-8", errors="replace")


def dead_letter_doc(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    headers = {k: _text(v, 4000) for k, v in (record.headers or ())}
    return {
        "_id": f"{record.topic}:{record.partition}:{record.offset}",
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "original_topic": headers.get("x-original-topic"),
        "exception": headers.get("x-exception"),
        "consumer": headers.get("x-consumer"),
        "attempts": headers.get("x-attempts"),
        "event_id": headers.get("ce_id"),
        "event_type": headers.get("ce_type"),
        "district": headers.get("ce_district"),
        # pairs, not a mapping: a header name is arbitrary input, not a safe field name
        "headers": [[k, _text(v, 4000)] for k, v in (record.headers or ())],
        "headers_b64": [
            [k, base64.b64encode(v or b"").decode()] for k, v in (record.headers or ())
        ],
        "key_b64": base64.b64encode(record.key).decode() if record.key is not None else None,
        "value_b64": base64.b64encode(record.value or b"").decode(),
        # what operators read: personal data masked (the raw bytes stay for replay only)
        "value_text": mask_text(_text(record.value, 32768)),
        "at": datetime.fromtimestamp(record.timestamp / 1000, UTC)
        if record.timestamp
        else datetime.now(UTC),
        "replays": 0,
    }


def register(service: Service) -> None:
    """One Kafka subscriber over every topic the gateway reads, dispatching per topic.

    Each ``Service.consume`` call would add a member to the consumer group, and every member
    costs a rebalance at start (about a second each on noida-db); the gateway reads ten topics
    plus the dead-letter topics, so it uses the same :class:`EventConsumer` (inbox, quarantine,
    retries, DLT) behind a single subscriber.
    """
    kinds_of: dict[Topic, list[EntityKind]] = {}
    for kind in ENTITIES:  # the inspection service announces five kinds on one topic
        kinds_of.setdefault(kind.topic, []).append(kind)
    plan: dict[Topic, dict[str, Handler]] = {
        topic: {k.event_type(verb): entity_handler(k) for k in kinds for verb in k.verbs}
        for topic, kinds in kinds_of.items()
    }
    plan[SUPERVISION_LEADS] = {LEAD_TYPE: on_lead}
    plan[INGEST_QUARANTINE] = {QUARANTINE_TYPE: on_quarantined}
    plan[AUDIT_EVENTS] = {AUDIT_READ_TYPE: on_audit_read}
    # what each topic's handlers read by id, loaded for a whole batch at once
    prefetch: dict[Topic, dict[str | Lookup, KeyOf]] = {
        topic: {
            **{k.collection: entity_key(kinds, k.collection) for k in kinds},
            storage.ACCEPTED_BY_SUBJECT: subject_key(kinds),
        }
        for topic, kinds in kinds_of.items()
    }
    prefetch[SUPERVISION_LEADS] = {
        storage.LEADS: data_key("lead_id"),
        storage.ACCEPTED_BY_SUBJECT: data_key("subject_id"),
    }
    prefetch[INGEST_QUARANTINE] = {storage.QUARANTINE: lambda e: e.subject or e.partitionkey}
    # what writes the feed takes the feed counter first: two replicas' batches take turns
    # instead of both doing their work and one losing it at commit (see UnitOfWork.claim)
    feed_writers = {*kinds_of, SUPERVISION_LEADS}
    consumers: dict[str, EventConsumer] = {}
    for topic, handlers in plan.items():
        name = f"{service.name}.{topic.name}"
        consumer = EventConsumer(
            service,
            name,
            service.topic(topic),
            handlers,
            prefetch=prefetch.get(topic),
            tracer=service.tracer_provider.get_tracer("jiandu.consumer"),
            claims=[(storage.COUNTERS, storage.FEED_COUNTER)] if topic in feed_writers else [],
        )
        service.consumers[name] = consumer
        consumers[consumer.topic] = consumer
    prefix = service.settings.topic_prefix
    dead_letter_topics = {t.dlt(prefix) for t in ALL_TOPICS if t.dead_letter}

    async def on_batch(records: tuple[ConsumerRecord[bytes, bytes], ...]) -> None:
        dead = [dead_letter_doc(r) for r in records if r.topic in dead_letter_topics]
        if dead:
            await service.db[storage.DEAD_LETTERS].bulk_write(
                [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": d}, upsert=True) for d in dead],
                ordered=False,
            )
        items = [
            consumers[r.topic].decode(i, r)
            for i, r in enumerate(records)
            if r.topic not in dead_letter_topics
        ]
        await apply_batch(service, items)

    service.subscribe_batches(
        [*consumers, *sorted(dead_letter_topics)],
        on_batch,
        consumer_name=f"{service.name}.projections",
        title=f"{service.name}:projections",
        description="entity events, leads, quarantine announcements and every dead-letter "
        "topic (kept raw for replay) feeding the gateway's read models",
    )
