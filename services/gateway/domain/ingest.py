"""Ingest validation (接入校验): from an HTTP body to accepted envelopes and refusals.

Pure: no I/O. A body is one structured-mode CloudEvent (``application/cloudevents+json`` or
``application/json``), a batch (``application/cloudevents-batch+json``, a JSON array), or
one binary-mode event (``ce-*`` headers, the JSON data as the body).
Each event is checked for the required CloudEvents attributes, the Jiandu extensions
(``shared.envelope.Envelope``), its type's data contract (``shared.contracts``), the 64 KiB
limit, and that its ``district``/``partitionkey`` agree with its data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from shared.contracts import validate_external
from shared.envelope import MAX_EVENT_BYTES, Envelope, EventRejected

REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
STRUCTURED = ("application/cloudevents+json", "application/json")
BATCH = "application/cloudevents-batch+json"
CE_HEADER = "ce-"

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
    "out_of_scope": 403,
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
    subject_id: str | None = None

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
    positions: list[int] = field(default_factory=list)
    """Index in the body of each of ``events``."""

    def add(self, index: int, event: Envelope) -> None:
        self.events.append(event)
        self.positions.append(index)


def restrict_to(parsed: Parsed, districts: frozenset[str], key_id: str) -> Parsed:
    """Refuse the events of districts an ingest key may not send for (``out_of_scope``)."""
    out = Parsed(batch=parsed.batch, refused=list(parsed.refused))
    for index, event in zip(parsed.positions, parsed.events, strict=True):
        if event.district in districts:
            out.add(index, event)
            continue
        raw = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
        out.refused.append(
            Refusal(
                index=index if parsed.batch else None,
                code="out_of_scope",
                reason=f"API key {key_id} may not send events for district {event.district}"
                f" (allowed: {', '.join(sorted(districts))})",
                raw=raw[:32768],
                event_id=event.id,
                event_type=event.type,
                district=event.district,
                subject_id=event.partitionkey,
            )
        )
    out.refused.sort(key=lambda r: r.index or 0)
    return out


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def binary_attributes(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``ce-*`` headers of an HTTP binary-mode event, percent-decoded, by attribute name."""
    return {
        name[len(CE_HEADER) :].lower(): unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(CE_HEADER)
    }


def parse_body(
    body: bytes,
    content_type: str | None,
    *,
    max_batch: int,
    ce_headers: Mapping[str, str] | None = None,
) -> Parsed:
    """Split a request body into valid envelopes and per-event refusals.

    ``ce_headers`` (the ``ce-*`` headers, see ``binary_attributes``) make the body the data
    of one binary-mode event whose ``datacontenttype`` is the content type.
    """
    kind = media_type(content_type)
    if ce_headers:
        return _parse_binary(body, kind, dict(ce_headers))
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
            parsed.add(index, check_event(item))
        except EventRejected as exc:
            parsed.refused.append(_refusal(index if parsed.batch else None, item, exc))
        except Exception as exc:  # never let odd input become a 500
            rejected = EventRejected(f"cannot read event: {exc}", code="invalid")
            parsed.refused.append(_refusal(index if parsed.batch else None, item, rejected))
    return parsed


def _parse_binary(body: bytes, kind: str, attributes: dict[str, Any]) -> Parsed:
    if kind != "application/json" and not kind.endswith("+json"):
        raise BodyRefused(
            "unsupported_media_type",
            f"binary-mode data of type {kind!r} is not accepted; the data must be JSON",
        )
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyRefused("malformed_json", f"data is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise BodyRefused("malformed_json", "data is nested too deeply") from exc
    item: dict[str, Any] = {**attributes, "datacontenttype": kind}
    if data is not None:
        item["data"] = data
    parsed = Parsed(batch=False)
    try:
        parsed.add(0, check_event(item))
    except EventRejected as exc:
        parsed.refused.append(_refusal(None, item, exc))
    except Exception as exc:  # never let odd input become a 500
        parsed.refused.append(_refusal(None, item, EventRejected(f"cannot read event: {exc}")))
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
        subject_id=_text(attrs.get("partitionkey")),
    )


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None
