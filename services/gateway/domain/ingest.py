"""Ingest validation (接入校验): from an HTTP body to accepted envelopes and refusals.

Pure: no I/O. A body is one structured-mode CloudEvent (``application/cloudevents+json`` or
``application/json``) or a batch (``application/cloudevents-batch+json``, a JSON array).
Each event is checked for the required CloudEvents attributes, the Jiandu extensions
(``shared.envelope.Envelope``), its type's data contract (``shared.contracts``), the 64 KiB
limit, and that its ``district``/``partitionkey`` agree with its data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.contracts import validate_external
from shared.envelope import MAX_EVENT_BYTES, Envelope, EventRejected

REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
STRUCTURED = ("application/cloudevents+json", "application/json")
BATCH = "application/cloudevents-batch+json"

STATUS_BY_CODE: dict[str, int] = {
    "malformed_json": 400,
    "not_object": 400,
    "invalid": 400,
    "inconsistent": 400,
    "empty_batch": 400,
    "bad_data": 422,
    "unknown_type": 422,
    "too_large": 413,
    "too_many_events": 413,
    "unsupported_media_type": 415,
    "unauthenticated": 401,
    "bad_signature": 401,
    "not_cloudevent": 400,
}
"""HTTP status for a refusal code (a single event, or a batch where every event was refused)."""

ENTITY_KEY: dict[str, str] = {
    "gov.12345.workorder.created": "order_id",
    "gov.12345.workorder.updated": "order_id",
    "gov.enforcement.case.closed": "case_id",
    "gov.enforcement.penalty.decided": "case_id",
    "gov.enforcement.penalty.filed": "case_id",
}
"""The data field that is the entity id, hence the partition key."""


class BodyRefused(Exception):
    """The whole body is unusable (not JSON, wrong media type, too many events)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)


@dataclass
class Refusal:
    index: int | None
    code: str
    reason: str
    raw: str
    event_id: str | None = None
    event_type: str | None = None
    district: str | None = None

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 400)

    def public(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.event_id,
            "type": self.event_type,
            "code": self.code,
            "reason": self.reason,
        }


@dataclass
class Parsed:
    batch: bool
    events: list[Envelope] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def parse_body(body: bytes, content_type: str | None, *, max_batch: int) -> Parsed:
    """Split a request body into valid envelopes and per-event refusals."""
    kind = media_type(content_type)
    if kind != BATCH and kind not in STRUCTURED:
        raise BodyRefused(
            "unsupported_media_type",
            f"content type {kind!r} is not accepted; send {STRUCTURED[0]} or {BATCH}",
        )
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyRefused("malformed_json", f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise BodyRefused("malformed_json", "body is nested too deeply") from exc
    if kind == BATCH:
        if not isinstance(payload, list):
            raise BodyRefused("malformed_json", "a batch must be a JSON array of CloudEvents")
        if not payload:
            raise BodyRefused("empty_batch", "the batch holds no events")
        if len(payload) > max_batch:
            raise BodyRefused(
                "too_many_events", f"{len(payload)} events in one batch; at most {max_batch}"
            )
        items: list[Any] = payload
    else:
        items = [payload]
    parsed = Parsed(batch=kind == BATCH)
    for index, item in enumerate(items):
        try:
            parsed.events.append(check_event(item))
        except EventRejected as exc:
            parsed.refused.append(_refusal(index if parsed.batch else None, item, exc))
        except Exception as exc:  # never let odd input become a 500
            rejected = EventRejected(f"cannot read event: {exc}", code="invalid")
            parsed.refused.append(_refusal(index if parsed.batch else None, item, rejected))
    return parsed


def check_event(item: Any) -> Envelope:
    """One structured CloudEvent → a valid Envelope, or EventRejected with the reason."""
    if not isinstance(item, dict):
        raise EventRejected("an event must be a JSON object", code="not_object")
    size = len(json.dumps(item, ensure_ascii=False).encode())
    if size > MAX_EVENT_BYTES:
        raise EventRejected(f"event is {size} bytes, over the 64 KiB limit", code="too_large")
    missing = [a for a in REQUIRED_ATTRIBUTES if a not in item]
    if missing:
        raise EventRejected(f"missing required attribute(s): {', '.join(missing)}")
    event = Envelope.parse_attributes(item)
    try:
        contract = validate_external(event)
    except EventRejected as exc:
        code = "bad_data" if exc.code == "invalid" else exc.code
        raise EventRejected(exc.reason, code=code) from exc
    data_district = getattr(contract, "district", None)
    if data_district is not None and data_district != event.district:
        raise EventRejected(
            f"district extension {event.district} differs from data.district {data_district}",
            code="inconsistent",
        )
    key_field = ENTITY_KEY.get(event.type)
    if key_field is not None and getattr(contract, key_field) != event.partitionkey:
        raise EventRejected(
            f"partitionkey must be the entity id (data.{key_field})", code="inconsistent"
        )
    event.to_kafka()  # the encoded record must also fit in 64 KiB
    return event


def _refusal(index: int | None, item: Any, exc: EventRejected) -> Refusal:
    attrs = item if isinstance(item, dict) else {}
    try:
        raw = json.dumps(item, ensure_ascii=False)
    except (TypeError, ValueError):
        raw = repr(item)
    return Refusal(
        index=index,
        code=exc.code,
        reason=exc.reason,
        raw=raw[:32768],
        event_id=_text(attrs.get("id")),
        event_type=_text(attrs.get("type")),
        district=_text(attrs.get("district")),
    )


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None
