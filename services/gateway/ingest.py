"""Ingest, the application side: accept events, keep refused input, sample unauthenticated
refusals. Each step is one transaction through the unit of work (``storage`` writes, the
outbox emits); the HTTP side (body, limits, status codes) is ``routes/ingest.py``.

Accepted events are written to the outbox in the same transaction as their idempotency record,
so a 202 means durable. Every event refused to an authenticated sender is kept in
``quarantine`` with the reason and the raw body and announced on ``ingest.quarantine``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from services.gateway import storage
from services.gateway.context import GatewayService
from services.gateway.domain.ingest import Parsed, Refusal
from shared.consumer import QUARANTINE_TYPE
from shared.envelope import DISTRICT_CODE, Envelope
from shared.retrying import RACED_INSERTS
from shared.service import Service
from shared.telemetry import producer_trace
from shared.topics import EXTERNAL_TYPE_TOPICS, INGEST_QUARANTINE
from shared.unit_of_work import UnitOfWork

T = TypeVar("T")
RAW_KEPT = 32768
"""Bytes of a refused body kept in quarantine."""
RAW_ANNOUNCED = 2000
"""Characters of it announced on ``ingest.quarantine`` (the whole stays in quarantine)."""


async def in_uow_retrying(svc: Service, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run ``work`` in a transaction, again when it raced another writer (a duplicate key
    or a conflict that outlasted ``run_in_uow``'s own retries; 5 tries in all)."""
    return await RACED_INSERTS(svc.run_in_uow, work)


def quarantine_doc(
    refusal: Refusal, key_id: str | None, remote: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "_id": f"http:{uuid.uuid4()}",
        "source": "http",
        "consumer": "gateway.ingest",
        "key_id": key_id,
        "remote": remote,
        "reason": refusal.reason,
        "code": refusal.code,
        "index": refusal.index,
        "event_id": refusal.event_id,
        "event_type": refusal.event_type,
        "subject_id": refusal.subject_id,
        "district": refusal.district
        if refusal.district and DISTRICT_CODE.match(refusal.district)
        else None,
        "raw": refusal.raw,
        "at": now,
    }


async def keep_refused(
    uow: UnitOfWork,
    refused: list[Refusal],
    key_id: str | None,
    remote: str | None,
    *,
    key_verified: bool = True,
) -> None:
    """Quarantine each refusal and announce it on ``ingest.quarantine``."""
    for refusal in refused:
        doc = quarantine_doc(refusal, key_id, remote, uow.now())
        if not key_verified:
            doc["key_verified"] = False  # an oversized body's signature cannot be checked
        storage.quarantine(uow, doc)
        await uow.emit(
            Envelope(
                type=QUARANTINE_TYPE,
                source=uow.source,
                district=doc["district"] or "000000",
                partitionkey=doc["_id"],
                subject=doc["_id"],
                data={
                    **{k: v for k, v in doc.items() if k not in ("_id", "at")},
                    "raw": doc["raw"][:RAW_ANNOUNCED],
                },
            ),
            INGEST_QUARANTINE,
        )


def body_refusal(code: str, reason: str, raw: bytes) -> Refusal:
    """The refusal of a whole request body (not one event of it)."""
    text = raw[:RAW_KEPT].decode("utf-8", "replace")
    return Refusal(index=None, code=code, reason=reason, raw=text)


async def refuse(
    gw: GatewayService,
    refusal: Refusal,
    key_id: str | None,
    remote: str | None,
    *,
    key_verified: bool = True,
) -> None:
    """Keep one refused request in quarantine (its own transaction)."""

    async def work(uow: UnitOfWork) -> None:
        await keep_refused(uow, [refusal], key_id, remote, key_verified=key_verified)

    await in_uow_retrying(gw, work)


UNAUTHENTICATED_REASONS = {
    "bad_signature": "signature does not match the body (X-Signature: sha256=<hex HMAC>)",
}
DEFAULT_UNAUTHENTICATED_REASON = "a valid X-Api-Key (or X-Key-Id with X-Signature) is required"


async def refuse_unauthenticated(
    gw: GatewayService, code: str, key_id: str | None, body: bytes, remote: str | None
) -> Refusal:
    """Count an unauthenticated refusal in its hour; keep and announce only a bounded sample
    (``unauthenticated_sample_per_hour``), so a flood of bad requests stays cheap."""
    reason = UNAUTHENTICATED_REASONS.get(code, DEFAULT_UNAUTHENTICATED_REASON)
    gw.limits.unauthenticated.labels(code).inc()
    seen = await storage.count_refusal(gw.db, code, remote, gw.clock.now())
    if seen > gw.settings.unauthenticated_sample_per_hour:
        return Refusal(index=None, code=code, reason=reason, raw="")
    refusal = body_refusal(code, reason, body)
    await refuse(gw, refusal, key_id, remote)
    return refusal


async def accept(
    gw: GatewayService, parsed: Parsed, key_id: str, remote: str | None
) -> tuple[list[str], list[str]]:
    """Accept the parsed events of one request and quarantine its refused ones, in one
    transaction: (the ids accepted, those of them already accepted before)."""
    accepted, duplicates = await in_uow_retrying(
        gw, lambda uow: _accept(gw, uow, parsed, key_id, remote)
    )
    if accepted:
        await gw.record(
            f"key:{key_id}",
            "ingest",
            "ingest",
            "events",
            accepted,
            personal_data=any(e.type == "gov.12345.workorder.created" for e in parsed.events),
            details={"duplicates": len(duplicates), "refused": len(parsed.refused)},
        )
    return accepted, duplicates


async def _accept(
    gw: GatewayService, uow: UnitOfWork, parsed: Parsed, key_id: str, remote: str | None
) -> tuple[list[str], list[str]]:
    unique: dict[str, Envelope] = {}
    for event in parsed.events:
        unique.setdefault(event.id, event)
    known = await storage.known_event_ids(uow, list(unique))
    fresh = [e for e in unique.values() if e.id not in known]
    storage.mark_accepted(
        uow,
        [
            {
                "_id": e.id,
                "type": e.type,
                "source": e.source,
                "subject_id": e.partitionkey,
                "key_id": key_id,
                "at": uow.now(),
            }
            for e in fresh
        ],
    )
    for event in fresh:
        ext = event.extension_attributes
        with producer_trace(
            gw.tracer_provider,
            f"accept {event.type}",
            ext.get("traceparent"),
            ext.get("tracestate"),
        ):
            await uow.emit(event, EXTERNAL_TYPE_TOPICS[event.type])
    await keep_refused(uow, parsed.refused, key_id, remote)
    seen: set[str] = set()
    duplicates: list[str] = []
    for event in parsed.events:
        if (event.id in known or event.id in seen) and event.id not in duplicates:
            duplicates.append(event.id)
        seen.add(event.id)
    return list(unique), duplicates
