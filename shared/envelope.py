"""The CloudEvents 1.0 envelope every Jiandu event travels in.

One pydantic model (:class:`Envelope`) validates the attributes, including the two
extensions of the event contract: ``district`` (行政区划代码) and ``partitionkey`` (the
entity id, used as the Kafka key). Every other CloudEvents 1.0 attribute is accepted too:
``dataschema`` is validated, and any other extension (``traceparent``/``tracestate`` of the
distributed-tracing extension, a producer's own) is kept in ``extension_attributes`` when its
name follows the spec (lowercase a-z and 0-9, at most 20 characters), within a bounded count
and size. Kafka encoding is binary content mode (``ce_*`` headers, extensions included)
through the CloudEvents SDK's Kafka binding.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

MAX_EVENT_BYTES = 64 * 1024
"""Events over 64 KiB are refused (event contract)."""

DISTRICT_CODE = re.compile(r"^\d{6}$")

EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
"""CloudEvents 1.0 attribute naming: lowercase a-z and 0-9; 20 characters at most."""
MAX_EXTENSIONS = 16
"""Extension attributes an event may carry besides ``district`` and ``partitionkey``."""
MAX_EXTENSION_CHARS = 2048
"""Longest value of one extension attribute (W3C ``tracestate`` fits easily)."""
MAX_EXTENSIONS_CHARS = 8192
"""All extension values of one event together."""

ExtensionValue = StrictBool | StrictInt | StrictStr
"""CloudEvents extension types as JSON carries them (binary modes carry strings)."""


class EventRejected(ValueError):
    """Input that can never be processed: the reason is meant for the sender."""

    def __init__(self, reason: str, *, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Envelope(BaseModel):
    """A CloudEvent with Jiandu's required extensions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    specversion: str = "1.0"
    type: str = Field(min_length=1, max_length=200)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = Field(default=None, max_length=500)
    datacontenttype: str = "application/json"
    dataschema: str | None = Field(default=None, min_length=1, max_length=2000)
    district: str = Field(description="行政区划代码, six digits, e.g. 310106")
    partitionkey: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    extension_attributes: dict[str, ExtensionValue] = Field(
        default_factory=dict,
        description="Other CloudEvents extension attributes (e.g. traceparent), kept as sent.",
    )

    @field_validator("specversion")
    @classmethod
    def _v1(cls, value: str) -> str:
        if value != "1.0":
            raise ValueError("only CloudEvents specversion 1.0 is accepted")
        return value

    @field_validator("district")
    @classmethod
    def _district(cls, value: str) -> str:
        if not DISTRICT_CODE.match(value):
            raise ValueError("district must be a six-digit administrative division code")
        return value

    @field_validator("extension_attributes")
    @classmethod
    def _extensions(cls, value: dict[str, ExtensionValue]) -> dict[str, ExtensionValue]:
        return check_extensions(value)

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    # -- Kafka binary content mode -------------------------------------------------

    def to_kafka(self) -> tuple[bytes, bytes, dict[str, str]]:
        """Encode as (key, value, headers); raises EventRejected when over 64 KiB."""
        attributes: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "specversion": self.specversion,
            "type": self.type,
            "time": self.time,
            "datacontenttype": self.datacontenttype,
            "district": self.district,
            "partitionkey": self.partitionkey,
        }
        if self.subject is not None:
            attributes["subject"] = self.subject
        if self.dataschema is not None:
            attributes["dataschema"] = self.dataschema
        for name, value in self.extension_attributes.items():
            attributes[name] = canonical_string(value)
        message = ce_kafka.to_binary_event(CloudEvent(attributes=attributes, data=self.data))
        if len(message.value) > MAX_EVENT_BYTES:
            raise EventRejected(
                f"event {self.id} is {len(message.value)} bytes, over the 64 KiB limit",
                code="too_large",
            )
        headers = {k: v.decode() for k, v in message.headers.items()}
        key = message.key if isinstance(message.key, bytes) else str(message.key).encode()
        return key, message.value, headers

    @classmethod
    def from_kafka(
        cls, value: bytes, headers: dict[str, bytes] | list[tuple[str, bytes]], key: bytes | None
    ) -> Envelope:
        """Decode a binary-mode record; any defect raises EventRejected with the reason."""
        if len(value) > MAX_EVENT_BYTES:
            raise EventRejected(f"record is {len(value)} bytes, over 64 KiB", code="too_large")
        raw = dict(headers) if not isinstance(headers, dict) else headers
        ce_headers = {
            k: (v if isinstance(v, bytes) else str(v).encode())
            for k, v in raw.items()
            if k.startswith("ce_") or k == "content-type"
        }
        if "ce_id" not in ce_headers or "ce_type" not in ce_headers:
            raise EventRejected("record carries no CloudEvents ce_* headers", code="not_cloudevent")
        try:
            event = ce_kafka.from_binary_event(
                ce_kafka.KafkaMessage(headers=ce_headers, key=key, value=value)
            )
        except Exception as exc:  # the SDK raises several error kinds; all mean bad input
            raise EventRejected(f"not a valid binary CloudEvent: {exc}") from exc
        attrs = dict(event.get_attributes())
        data = event.get_data()
        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise EventRejected(f"data is not JSON: {exc}", code="bad_data") from exc
            except RecursionError as exc:
                raise EventRejected("data is nested too deeply", code="bad_data") from exc
        if data is not None and not isinstance(data, dict):
            raise EventRejected("data must be a JSON object", code="bad_data")
        attrs["data"] = data or {}
        return cls.parse_attributes(attrs)

    @classmethod
    def parse_attributes(cls, attrs: dict[str, Any]) -> Envelope:
        """Validate a structured-mode dict, turning pydantic errors into one clear reason.

        Attributes that are not Jiandu's fields are extension attributes (checked by
        ``check_extensions``); a JSON ``null`` attribute counts as absent, as the spec says.
        """
        known = {k: v for k, v in attrs.items() if k in CE_FIELDS}
        extensions = {k: v for k, v in attrs.items() if k not in CE_FIELDS and v is not None}
        nested = extensions.pop("extension_attributes", None)  # a model_dump() fed back
        if isinstance(nested, dict):
            extensions = {**nested, **extensions}
        elif nested is not None:
            extensions["extension_attributes"] = nested
        try:
            return cls.model_validate({**known, "extension_attributes": extensions})
        except Exception as exc:
            raise EventRejected(describe_validation_error(exc), code="invalid") from exc


CE_FIELDS = frozenset(Envelope.model_fields) - {"extension_attributes"}
"""Attributes that are fields of the envelope; any other one is an extension attribute."""


def canonical_string(value: ExtensionValue) -> str:
    """The CloudEvents canonical string of an attribute value (Kafka and HTTP headers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_extensions(values: dict[str, Any]) -> dict[str, ExtensionValue]:
    """Extension attributes as the spec names them, bounded in count and size."""
    if len(values) > MAX_EXTENSIONS:
        raise ValueError(f"{len(values)} extension attributes; at most {MAX_EXTENSIONS}")
    total = 0
    for name, value in values.items():
        if not EXTENSION_NAME.match(name):
            raise ValueError(
                f"attribute name {name[:40]!r} is not a CloudEvents name"
                " (lowercase a-z and 0-9, at most 20 characters)"
            )
        size = len(canonical_string(value))
        if size > MAX_EXTENSION_CHARS:
            raise ValueError(
                f"extension {name} is {size} characters; at most {MAX_EXTENSION_CHARS}"
            )
        total += size
    if total > MAX_EXTENSIONS_CHARS:
        raise ValueError(
            f"extension attributes hold {total} characters; at most {MAX_EXTENSIONS_CHARS}"
        )
    return values


def describe_validation_error(exc: Exception) -> str:
    """One line per pydantic error: ``field: message``."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors():
            loc = ".".join(str(p) for p in err.get("loc", ())) or "event"
            parts.append(f"{loc}: {err.get('msg')}")
        return "; ".join(parts)
    return str(exc)
