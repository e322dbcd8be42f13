"""``POST /v1/events``: CloudEvents from external systems (API key or HMAC signature).

It answers:

* **202** with ``accepted`` ids when every event was accepted (a duplicate id is accepted
  again without a second Kafka record, and also listed under ``duplicates``);
* **207** for a batch where some events were accepted and some refused (both listed);
* **4xx** when nothing was accepted: a single event's status follows its refusal code
  (400 malformed/invalid, 401 unauthenticated/bad signature, 403 a district the key may
  not send for, 413 too large, 415 media type, 422 unknown type or data failing its
  contract); a batch where every event was refused is **400**; **429** when the client
  address's bucket (taken before authentication) or the key's is empty (not quarantined).

Refused input is kept as ``services.gateway.ingest`` describes.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.gateway import ingest
from services.gateway.deps import GatewayDep
from services.gateway.domain.ingest import (
    BodyRefused,
    Parsed,
    Refusal,
    binary_attributes,
    parse_body,
    restrict_to,
)
from services.gateway.schemas import IngestResult, RefusalOut

router = APIRouter(tags=["ingest"])


async def read_limited(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, or its first ``limit`` bytes and True when it is larger."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        return b"".join(chunks)[:limit], True
    buf = bytearray()
    async for chunk in request.stream():
        buf.extend(chunk)
        if len(buf) > limit:
            return bytes(buf[:limit]), True
    return bytes(buf), False


def refused_response(refusal: Refusal) -> JSONResponse:
    body = IngestResult(
        accepted=[], refused=[RefusalOut(**refusal.public())], detail=refusal.reason
    )
    return JSONResponse(body.model_dump(), status_code=refusal.status)


def too_many(detail: str, wait: float) -> JSONResponse:
    return JSONResponse(
        IngestResult(accepted=[], detail=f"{detail}; retry in {wait:.1f}s").model_dump(),
        status_code=429,
        headers={"Retry-After": str(max(1, round(wait)))},
    )


def ingest_response(parsed: Parsed, accepted: list[str], duplicates: list[str]) -> JSONResponse:
    refused = [RefusalOut(**r.public()) for r in parsed.refused]
    if not parsed.batch and parsed.refused:
        return refused_response(parsed.refused[0])
    result = IngestResult(accepted=accepted, duplicates=duplicates, refused=refused)
    if not refused:
        return JSONResponse(result.model_dump(), status_code=202)
    if accepted:
        result.detail = f"{len(accepted)} accepted, {len(refused)} refused"
        return JSONResponse(result.model_dump(), status_code=207)
    result.detail = "every event of the batch was refused"
    return JSONResponse(result.model_dump(), status_code=400)


@router.post(
    "/v1/events",
    name="ingest",
    status_code=202,
    response_model=IngestResult,
    responses={
        207: {"model": IngestResult, "description": "batch: some accepted, some refused"},
        400: {"model": IngestResult},
        401: {"model": IngestResult},
        403: {"model": IngestResult},
        413: {"model": IngestResult},
        415: {"model": IngestResult},
        422: {"model": IngestResult},
        429: {"model": IngestResult},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/cloudevents+json": {"schema": {"type": "object"}},
                "application/cloudevents-batch+json": {
                    "schema": {"type": "array", "items": {"type": "object"}}
                },
            },
        }
    },
)
async def receive(request: Request, gw: GatewayDep) -> JSONResponse:
    """Accept CloudEvents from external systems (API key or HMAC signature).

    Structured mode, batch mode and binary mode (``ce-*`` headers, JSON data as the body).
    """
    cfg, limits = gw.settings, gw.limits
    remote = request.client.host if request.client else None
    address = remote or "unknown"
    # Before reading the body or checking credentials, so a flood stays cheap. A request
    # that authenticates gives its token back: only refused credentials drain the bucket,
    # and authenticated traffic is limited per key below.
    wait = limits.per_address.take(address, time.monotonic())
    if wait > 0:
        limits.rate_limited.labels("address").inc()
        return too_many(f"rate limit of client address {remote} exceeded", wait)
    body, too_big = await read_limited(request, cfg.max_body_bytes)
    credential = await gw.auth.ingest_key(request, body, body_complete=not too_big)
    if credential.failure is not None:
        return refused_response(
            await ingest.refuse_unauthenticated(
                gw, credential.failure, credential.key_id, body, remote
            )
        )
    limits.per_address.give_back(address)
    key_id = credential.key_id
    assert key_id is not None
    if too_big:
        refusal = ingest.body_refusal(
            "too_large", f"body over the {cfg.max_body_bytes}-byte limit", body
        )
        await ingest.refuse(gw, refusal, key_id, remote, key_verified=credential.verified)
        return refused_response(refusal)
    try:
        parsed = parse_body(
            body,
            request.headers.get("content-type"),
            max_batch=cfg.max_batch_events,
            ce_headers=binary_attributes(request.headers),
        )
    except BodyRefused as exc:
        refusal = ingest.body_refusal(exc.code, exc.reason, body)
        await ingest.refuse(gw, refusal, key_id, remote)
        return refused_response(refusal)
    wait = limits.per_key.take(key_id, time.monotonic(), len(parsed.events) + len(parsed.refused))
    if wait > 0:
        limits.rate_limited.labels("key").inc()
        return too_many(f"rate limit of API key {key_id} exceeded", wait)
    if credential.districts is not None:
        parsed = restrict_to(parsed, credential.districts, key_id)
    accepted, duplicates = await ingest.accept(gw, parsed, key_id, remote)
    return ingest_response(parsed, accepted, duplicates)
