"""Append-only, hash-chained audit log (审计日志): pure chaining and verification.

Each record carries ``prev_hash`` (the previous record's hash) and ``hash`` = sha256 of the
canonical JSON of the record without ``hash``. Changing, deleting or re-ordering any record
breaks the chain at that point, which :func:`verify_chain` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces, UTF-8 kept) for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def timestamp(at: datetime) -> str:
    """Millisecond ISO time: what MongoDB keeps is exactly what was hashed."""
    return at.isoformat(timespec="milliseconds")


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k not in ("hash", "_id")}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def chain(
    prev: dict[str, Any] | None,
    *,
    at: datetime,
    actor: str,
    role: str,
    action: str,
    resource: str,
    resource_ids: list[str] | None = None,
    district: str | None = None,
    personal_data: bool = False,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The next record after ``prev`` (``None`` for the first one)."""
    record: dict[str, Any] = {
        "seq": (prev["seq"] + 1) if prev else 1,
        "at": timestamp(at),
        "actor": actor,
        "role": role,
        "action": action,
        "resource": resource,
        "resource_ids": list(resource_ids or [])[:200],
        "district": district,
        "personal_data": personal_data,
        "details": json.loads(canonical_json(details or {})),
        "prev_hash": prev["hash"] if prev else GENESIS,
    }
    record["hash"] = record_hash(record)
    return record


class ChainReport(BaseModel):
    ok: bool
    checked: int
    broken_at: int | None = None
    problem: str | None = None


def verify_chain(records: Iterable[dict[str, Any]]) -> ChainReport:
    """Walk the records in ``seq`` order; the first inconsistency is reported."""
    prev_hash = GENESIS
    expected = 1
    checked = 0
    for record in records:
        seq = record.get("seq")
        if seq != expected:
            return ChainReport(
                ok=False,
                checked=checked,
                broken_at=expected,
                problem=f"record {expected} is missing (found {seq})",
            )
        if record.get("prev_hash") != prev_hash:
            return ChainReport(
                ok=False,
                checked=checked,
                broken_at=seq,
                problem=f"record {seq}: prev_hash does not match record {seq - 1}",
            )
        if record_hash(record) != record.get("hash"):
            return ChainReport(
                ok=False,
                checked=checked,
                broken_at=seq,
                problem=f"record {seq}: content does not match its hash (altered)",
            )
        prev_hash = record["hash"]
        expected += 1
        checked += 1
    return ChainReport(ok=True, checked=checked)
