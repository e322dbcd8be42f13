"""AsyncAPI documents with a payload schema for every event type.

FastStream describes each service's channels (topics) and operations from its subscribers and
publishers, but every Jiandu record is a binary-mode CloudEvent whose value is only the
``data`` of one of several event types, so FastStream's payloads are empty. This module fills
them in: each channel gets one message per event type that travels on its topic, with the
CloudEvents attributes as Kafka headers (``ce_type`` fixed to the type) and the JSON schema of
the ``data`` as payload (the pydantic contracts of ``shared.contracts``, the entity
snapshot/change shape of ``docs/events.md`` for the services' own state changes).

``jiandu asyncapi`` (``make asyncapi``) writes ``docs/asyncapi/<service>.yaml``;
``tests/platform/test_asyncapi.py`` fails when the committed documents are stale.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from shared.api import AUDIT_READ_TYPE, AuditRead
from shared.consumer import QUARANTINE_TYPE
from shared.contracts import (
    EXTERNAL_SCHEMAS,
    LEAD_DISPOSED_TYPE,
    LEAD_TYPE,
    NOTIFY_REQUEST_TYPE,
    NotificationRequest,
    SupervisionLead,
)
from shared.registry import SERVICE_NAMES, SERVICES
from shared.topics import (
    AUDIT_EVENTS,
    DLT_SUFFIX,
    EXTERNAL_TYPE_TOPICS,
    INGEST_QUARANTINE,
    INSPECTION_EVENTS,
    NOTIFY_REQUESTS,
    SUPERVISION_LEADS,
)

DOCUMENTED_BOOTSTRAP = "127.0.0.1:9092"
"""The documents describe the default deployment (no topic prefix), whatever the environment."""
SCHEMA_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class EventType:
    """One CloudEvents ``type``: the topic it travels on and the JSON schema of its data."""

    type: str
    topic: str
    summary: str
    data: dict[str, Any]


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template=SCHEMA_REF)


def state_change_schema(entity: str) -> dict[str, Any]:
    """``{"<entity>": snapshot after the change, "change": what happened}`` (docs/events.md)."""
    return {
        "title": f"{entity} state change",
        "type": "object",
        "required": [entity, "change"],
        "properties": {
            entity: {
                "type": "object",
                "description": f"the {entity} after the change (personal data masked by readers)",
                "required": ["id", "district", "status", "updated_at"],
                "properties": {
                    "id": {"type": "string"},
                    "district": {"type": "string", "pattern": r"^\d{6}$"},
                    "unit": {"type": ["string", "null"]},
                    "status": {"type": ["string", "null"]},
                    "updated_at": {"type": "string", "format": "date-time"},
                },
                "additionalProperties": True,
            },
            "change": {
                "type": "object",
                "description": "what happened: by, at, reason and the verb's own details",
                "properties": {
                    "at": {"type": ["string", "null"], "format": "date-time"},
                    "by": {"type": ["string", "null"]},
                    "reason": {"type": ["string", "null"]},
                },
                "additionalProperties": True,
            },
        },
    }


QUARANTINE_SCHEMA: dict[str, Any] = {
    "title": "quarantined record",
    "type": "object",
    "required": ["consumer", "reason", "code", "topic", "partition", "offset"],
    "properties": {
        "consumer": {"type": "string"},
        "reason": {"type": "string"},
        "code": {"type": "string"},
        "topic": {"type": "string"},
        "partition": {"type": "integer"},
        "offset": {"type": "integer"},
        "event_id": {"type": ["string", "null"]},
        "event_type": {"type": ["string", "null"]},
        "raw": {"type": ["string", "null"]},
        "headers": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "source": {"type": "string"},
    },
}


def platform_events() -> list[EventType]:
    """Every event type of the platform, by topic: external ingest, internal contracts, and
    the services' state changes (the entity verbs the gateway projects)."""
    from services.gateway.domain.projections import ENTITIES  # the consumer's catalogue

    events = [
        EventType(
            t, EXTERNAL_TYPE_TOPICS[t].name, (model.__doc__ or t).strip(), model_schema(model)
        )
        for t, model in EXTERNAL_SCHEMAS.items()
    ]
    events += [
        EventType(
            NOTIFY_REQUEST_TYPE,
            NOTIFY_REQUESTS.name,
            "a notice to send to a unit",
            model_schema(NotificationRequest),
        ),
        EventType(
            LEAD_TYPE, SUPERVISION_LEADS.name, "监督线索 raised", model_schema(SupervisionLead)
        ),
        EventType(
            LEAD_DISPOSED_TYPE,
            SUPERVISION_LEADS.name,
            "a supervisor's disposal (处置) of a lead",
            state_change_schema("lead"),
        ),
        EventType(
            AUDIT_READ_TYPE,
            AUDIT_EVENTS.name,
            "an unmasked personal-data read, for the audit chain",
            model_schema(AuditRead),
        ),
        EventType(
            QUARANTINE_TYPE,
            INGEST_QUARANTINE.name,
            "refused input, kept with the reason",
            QUARANTINE_SCHEMA,
        ),
    ]
    from services.inspection.handlers import EVENT_PREFIX, EVENT_VERBS

    events += [
        EventType(
            f"{EVENT_PREFIX}{entity}.{verb}",
            INSPECTION_EVENTS.name,
            f"inspection service: {entity} {verb}",
            state_change_schema(entity),
        )
        for entity, verbs in EVENT_VERBS.items()
        for verb in verbs
    ]
    listed = {e.type for e in events}  # the inspection service's own catalogue comes first
    for entity in ENTITIES:
        events += [
            EventType(
                entity.event_type(verb),
                entity.topic.name,
                f"{entity.name} {verb}",
                state_change_schema(entity.name),
            )
            for verb in entity.verbs
            if entity.event_type(verb) not in listed
        ]
    return events


def headers_schema(event_type: str) -> dict[str, Any]:
    """The CloudEvents attributes of a binary-mode Kafka record (shared/envelope.py)."""
    text = {"type": "string"}
    return {
        "type": "object",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"],
        "properties": {
            "ce_specversion": {"const": "1.0"},
            "ce_id": text,
            "ce_source": text,
            "ce_type": {"const": event_type},
            "ce_time": {"type": "string", "format": "date-time"},
            "ce_subject": text,
            "ce_district": {"type": "string", "pattern": r"^\d{6}$"},
            "ce_partitionkey": text,
            "content-type": {"const": "application/json"},
            "traceparent": {"type": "string", "description": "W3C trace context"},
        },
    }


def _hoist(schema: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
    body = dict(schema)
    for name, definition in sorted(body.pop("$defs", {}).items()):
        into.setdefault(name, definition)
    return body


def with_event_payloads(spec: dict[str, Any], events: Sequence[EventType]) -> dict[str, Any]:
    """Give every channel one message per event type on its topic, with real payloads."""
    by_topic: dict[str, list[EventType]] = {}
    for event in events:
        by_topic.setdefault(event.topic, []).append(event)
    components = spec.setdefault("components", {})
    messages: dict[str, Any] = components.setdefault("messages", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    refs_by_channel: dict[str, list[str]] = {}
    for channel_id, channel in spec.get("channels", {}).items():
        address = str(channel.get("address", ""))
        # a dead-letter topic carries the records of its topic unchanged (plus error headers)
        topic_events = by_topic.get(address.removesuffix(DLT_SUFFIX))
        if not topic_events:
            continue
        for ref in channel.get("messages", {}).values():
            old = ref["$ref"].rsplit("/", 1)[-1]
            payload_ref = messages.pop(old.replace("%3E", ">"), {}).get("payload", {})
            old_schema = str(payload_ref.get("$ref", "")).rsplit("/", 1)[-1].replace("%3E", ">")
            if old_schema and old_schema != "EmptyPayload":
                schemas.pop(old_schema, None)
        channel["messages"] = {}
        for event in topic_events:
            schema_name = f"{event.type}.data"
            schemas[schema_name] = _hoist(event.data, schemas)
            messages[event.type] = {
                "name": event.type,
                "title": event.type,
                "summary": event.summary.splitlines()[0],
                "contentType": "application/json",
                "headers": headers_schema(event.type),
                "payload": {"$ref": SCHEMA_REF.format(model=schema_name)},
            }
            channel["messages"][event.type] = {"$ref": f"#/components/messages/{event.type}"}
        refs_by_channel[channel_id] = list(channel["messages"])
    for operation in spec.get("operations", {}).values():
        channel_ref = operation["channel"]["$ref"]
        channel_id = channel_ref.rsplit("/", 1)[-1].replace("%3E", ">")
        if channel_id in refs_by_channel:
            operation["messages"] = [
                {"$ref": f"{channel_ref}/messages/{name}"} for name in refs_by_channel[channel_id]
            ]
    if not any(
        str(m.get("payload", {}).get("$ref", "")).endswith("/EmptyPayload")
        for m in messages.values()
    ):
        schemas.pop("EmptyPayload", None)
    spec["channels"] = dict(sorted(spec.get("channels", {}).items()))
    spec["operations"] = dict(sorted(spec.get("operations", {}).items()))
    components["schemas"] = dict(sorted(schemas.items()))
    components["messages"] = dict(sorted(messages.items()))
    return spec


def service_document(name: str, events: Sequence[EventType]) -> dict[str, Any]:
    """One service's AsyncAPI document: FastStream's channels and operations, real payloads."""
    module, _, cls = SERVICES[name].settings.partition(":")
    settings = getattr(importlib.import_module(module), cls)(
        kafka_bootstrap=DOCUMENTED_BOOTSTRAP, topic_prefix=""
    )
    build = importlib.import_module(SERVICES[name].main).build
    schema = build(settings).stream_app.schema.to_specification()
    return with_event_payloads(json.loads(schema.to_json()), events)


class _Dumper(yaml.SafeDumper):
    """No anchors/aliases: every schema is written out where it is used."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def documents(names: Iterable[str] = SERVICE_NAMES) -> dict[str, str]:
    """File name → YAML text for every service."""
    events = platform_events()
    return {f"{name}.yaml": render(service_document(name, events)) for name in names}


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in documents().items():
        target = out / file_name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
