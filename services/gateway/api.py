"""HTTP API of the gateway: ingest, login, the scoped read API, operations and the console.

Ingest (``POST /v1/events``) answers:

* **202** with ``accepted`` ids when every event was accepted (a duplicate id is accepted
  again without a second Kafka record, and also listed under ``duplicates``);
* **207** for a batch where some events were accepted and some refused (both listed);
* **4xx** when nothing was accepted: a single event's status follows its refusal code
  (400 malformed/invalid, 401 unauthenticated/bad signature, 403 a district the key may
  not send for, 413 too large, 415 media type, 422 unknown type or data failing its
  contract); a batch where every event was refused is **400**; **429** when the client
  address's bucket (taken before authentication) or the key's is empty (not quarantined).

Every event refused to an authenticated sender is kept in ``quarantine`` with the reason and
the raw body and announced on ``ingest.quarantine``; unauthenticated refusals are counted per
hour and code, and only a bounded sample of them is kept and announced. Accepted events are
written to the outbox in the same transaction as their idempotency record, so a 202 means
durable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.gateway import ops, storage
from services.gateway.auth import Auth, Caller, IngestCredential, issue_token
from services.gateway.domain.access import (
    Permission,
    Principal,
    has_personal_data,
    mask_personal_data,
    within,
)
from services.gateway.domain.audit import ChainReport
from services.gateway.domain.export import EXPORT_COLUMNS, OPEN_DATA_FIGURES, to_csv
from services.gateway.domain.ingest import (
    BodyRefused,
    Parsed,
    Refusal,
    binary_attributes,
    media_type,
    parse_body,
    restrict_to,
)
from services.gateway.domain.ratelimit import RateLimiter
from services.gateway.domain.transfer import TRANSFER_OUTCOME, follow_up, transfer_request
from services.gateway.settings import GatewaySettings
from shared.api import limit_param, offset_param
from shared.consumer import QUARANTINE_TYPE
from shared.contracts import LEAD_DISPOSED_TYPE
from shared.envelope import DISTRICT_CODE, Envelope
from shared.mongo import page
from shared.service import Service
from shared.telemetry import producer_trace
from shared.topics import EXTERNAL_TYPE_TOPICS, INGEST_QUARANTINE, SUPERVISION_LEADS
from shared.unit_of_work import UnitOfWork

T = TypeVar("T")
CONSOLE_DIR = Path(str(resources.files("services.gateway").joinpath("console")))


# ------------------------------------------------------------------ response models


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class RefusalOut(BaseModel):
    index: int | None = Field(description="position in the batch (null for a single event)")
    id: str | None
    type: str | None
    code: str
    reason: str


class IngestResult(BaseModel):
    accepted: list[str] = Field(description="ids accepted (including duplicates)")
    duplicates: list[str] = Field(default_factory=list, description="ids already accepted")
    refused: list[RefusalOut] = Field(default_factory=list)
    detail: str | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    district: str | None
    unit: str | None
    scope: str


class EntityOut(Loose):
    id: str
    entity: str
    district: str | None = None
    unit: str | None = None
    status: str | None = None
    updated_at: Any = None
    event_time: datetime | None = None
    last_verb: str | None = None
    events: int = 0
    flags: list[str] = Field(default_factory=list)
    snapshot: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None
    trace_url: str | None = None


class TimelineOut(BaseModel):
    id: str
    type: str
    verb: str
    time: datetime
    status: str | None = None
    change: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None
    trace_url: str | None = None


class OpenData(BaseModel):
    figures: list[str]
    rows: list[dict[str, Any]]


class EntityDetail(BaseModel):
    item: EntityOut
    timeline: list[TimelineOut]


class EntityPage(BaseModel):
    items: list[EntityOut]
    total: int
    limit: int
    offset: int


class LooseDoc(Loose):
    id: str


class LoosePage(BaseModel):
    items: list[LooseDoc]
    total: int
    limit: int
    offset: int


class DistrictKpis(Loose):
    district: str
    name: str
    disposal_rate: float | None = Field(description="线索处置率: disposed / raised leads")


class Overview(BaseModel):
    districts: list[DistrictKpis]
    totals: dict[str, Any]


class Disposition(BaseModel):
    outcome: Literal["substantiated", "unfounded", "referred", "rectified", "discipline"] = Field(
        description="查实 / 不属实 / 移送 / 已整改 / 移送纪检监察 (issues a 移送函, followed up)"
    )
    note: str = Field(default="", max_length=2000)


class Me(BaseModel):
    sub: str
    role: str
    district: str | None
    unit: str | None
    scopes: list[str]
    personal_data: bool = Field(description="whether this role sees personal data unmasked")
    jaeger_url: str


# ------------------------------------------------------------------ helpers


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


async def in_uow_retrying(svc: Service, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run ``work`` in a transaction, again when it raced another writer."""
    for attempt in range(5):
        try:
            return await svc.run_in_uow(work)
        except DuplicateKeyError:
            if attempt == 4:
                raise
        except PyMongoError as exc:
            if not exc.has_error_label("TransientTransactionError") or attempt == 4:
                raise
        await asyncio.sleep(0.02 * (attempt + 1))
    raise RuntimeError("unreachable")


def trace_url(settings: GatewaySettings, trace_id: str | None) -> str | None:
    return f"{settings.jaeger_url.rstrip('/')}/trace/{trace_id}" if trace_id else None


def build_router(svc: Service) -> APIRouter:
    settings = svc.settings
    assert isinstance(settings, GatewaySettings)
    cfg: GatewaySettings = settings
    auth = Auth(cfg, lambda: svc.db)
    limiter = RateLimiter(cfg.rate_per_s, cfg.rate_burst, cfg.rate_limit_tracked)
    address_limiter = RateLimiter(
        cfg.address_rate_per_s, cfg.address_rate_burst, cfg.rate_limit_tracked
    )
    rate_limited = Counter(
        "jiandu_ingest_rate_limited_total",
        "Ingest requests answered 429, by the limit that was hit",
        ["limit"],
        registry=svc.registry,
    )
    refused_unauthenticated = Counter(
        "jiandu_ingest_unauthenticated_total",
        "Ingest requests refused for missing or bad credentials (all counted, few kept)",
        ["code"],
        registry=svc.registry,
    )
    pii_roles = cfg.pii_role_set()
    audit_log: list[storage.AuditLog] = []
    router = APIRouter()

    def audit() -> storage.AuditLog:
        if not audit_log:
            audit_log.append(storage.AuditLog(svc.db))
        return audit_log[0]

    async def record(
        actor: str,
        role: str,
        action: str,
        resource: str,
        ids: list[str] | None = None,
        *,
        district: str | None = None,
        personal_data: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        await audit().append(
            at=svc.clock.now(),
            actor=actor,
            role=role,
            action=action,
            resource=resource,
            resource_ids=ids,
            district=district,
            personal_data=personal_data,
            details=details,
        )

    # -------------------------------------------------------------- ingest

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
        for refusal in refused:
            doc = quarantine_doc(refusal, key_id, remote, uow.now())
            if not key_verified:
                doc["key_verified"] = False  # an oversized body's signature cannot be checked
            storage.quarantine(uow, doc)
            await uow.emit(
                Envelope(
                    type=QUARANTINE_TYPE,
                    source=svc.source,
                    district=doc["district"] or "000000",
                    partitionkey=doc["_id"],
                    subject=doc["_id"],
                    data={
                        **{k: v for k, v in doc.items() if k not in ("_id", "at")},
                        "raw": doc["raw"][:2000],  # the whole raw body stays in quarantine
                    },
                ),
                INGEST_QUARANTINE,
            )

    def refused_response(
        refusal: Refusal, status: int | None = None, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        body = IngestResult(
            accepted=[], refused=[RefusalOut(**refusal.public())], detail=refusal.reason
        )
        return JSONResponse(
            body.model_dump(), status_code=status or refusal.status, headers=headers
        )

    async def refuse_body(
        code: str,
        reason: str,
        raw: bytes,
        key_id: str | None,
        remote: str | None,
        *,
        key_verified: bool = True,
    ) -> JSONResponse:
        refusal = Refusal(
            index=None, code=code, reason=reason, raw=raw[:32768].decode("utf-8", "replace")
        )

        async def work(uow: UnitOfWork) -> None:
            await keep_refused(uow, [refusal], key_id, remote, key_verified=key_verified)

        await in_uow_retrying(svc, work)
        return refused_response(refusal)

    @router.post(
        "/v1/events",
        tags=["ingest"],
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
    async def ingest(request: Request) -> JSONResponse:
        """Accept CloudEvents from external systems (API key or HMAC signature).

        Structured mode, batch mode and binary mode (``ce-*`` headers, JSON data as the body).
        """
        remote = request.client.host if request.client else None
        address = remote or "unknown"
        # Before reading the body or checking credentials, so a flood stays cheap. A request
        # that authenticates gives its token back: only refused credentials drain the bucket,
        # and authenticated traffic is limited per key below.
        wait = address_limiter.take(address, time.monotonic())
        if wait > 0:
            rate_limited.labels("address").inc()
            return too_many(f"rate limit of client address {remote} exceeded", wait)
        body, too_big = await read_limited(request, cfg.max_body_bytes)
        credential = await auth.ingest_key(request, body, body_complete=not too_big)
        if credential.failure is not None:
            return await refuse_unauthenticated(credential, body, remote)
        address_limiter.give_back(address)
        key_id = credential.key_id
        assert key_id is not None
        if too_big:
            return await refuse_body(
                "too_large",
                f"body over the {cfg.max_body_bytes}-byte limit",
                body,
                key_id,
                remote,
                key_verified=credential.verified,
            )
        ce_headers = binary_attributes(request.headers)
        try:
            parsed = parse_body(
                body,
                request.headers.get("content-type"),
                max_batch=cfg.max_batch_events,
                ce_headers=ce_headers,
            )
        except BodyRefused as exc:
            return await refuse_body(exc.code, exc.reason, body, key_id, remote)
        wait = limiter.take(key_id, time.monotonic(), len(parsed.events) + len(parsed.refused))
        if wait > 0:
            rate_limited.labels("key").inc()
            return too_many(f"rate limit of API key {key_id} exceeded", wait)
        if credential.districts is not None:
            parsed = restrict_to(parsed, credential.districts, key_id)
        accepted, duplicates = await in_uow_retrying(
            svc, lambda uow: accept(uow, parsed, key_id, remote)
        )
        if accepted:
            await record(
                f"key:{key_id}",
                "ingest",
                "ingest",
                "events",
                accepted,
                personal_data=any(e.type == "gov.12345.workorder.created" for e in parsed.events),
                details={"duplicates": len(duplicates), "refused": len(parsed.refused)},
            )
        return ingest_response(parsed, accepted, duplicates)

    def too_many(detail: str, wait: float) -> JSONResponse:
        return JSONResponse(
            IngestResult(accepted=[], detail=f"{detail}; retry in {wait:.1f}s").model_dump(),
            status_code=429,
            headers={"Retry-After": str(max(1, round(wait)))},
        )

    async def refuse_unauthenticated(
        credential: IngestCredential, body: bytes, remote: str | None
    ) -> JSONResponse:
        """401, counted per hour and code; only a bounded sample is kept and announced."""
        code = credential.failure or "unauthenticated"
        reason = (
            "signature does not match the body (X-Signature: sha256=<hex HMAC>)"
            if code == "bad_signature"
            else "a valid X-Api-Key (or X-Key-Id with X-Signature) is required"
        )
        refused_unauthenticated.labels(code).inc()
        seen = await storage.count_refusal(svc.db, code, remote, svc.clock.now())
        if seen <= cfg.unauthenticated_sample_per_hour:
            return await refuse_body(code, reason, body, credential.key_id, remote)
        refusal = Refusal(index=None, code=code, reason=reason, raw="")
        return refused_response(refusal)

    async def accept(
        uow: UnitOfWork, parsed: Parsed, key_id: str, remote: str | None
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
                svc.tracer_provider,
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

    # -------------------------------------------------------------- login

    @router.post("/v1/auth/token", tags=["auth"], response_model=TokenOut)
    async def token(request: Request) -> TokenOut:
        """OAuth2 password grant (form or JSON body) → a bearer JWT."""
        body, too_big = await read_limited(request, 8192)
        if too_big:
            raise HTTPException(413, detail="login body too large")
        form: dict[str, Any]
        if media_type(request.headers.get("content-type")) == "application/json":
            try:
                form = json.loads(body or b"{}")
            except (ValueError, RecursionError) as exc:
                raise HTTPException(400, detail="body is not JSON") from exc
            if not isinstance(form, dict):
                raise HTTPException(400, detail="body must be an object")
        else:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type", "password") != "password":
            raise HTTPException(400, detail="unsupported_grant_type: only 'password'")
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise HTTPException(400, detail="username and password are required")
        principal = await auth.login(username, password)
        if principal is None:
            await record(username, "-", "login_failed", "auth")
            raise HTTPException(
                401,
                detail="invalid_grant: wrong username or password",
                headers={"WWW-Authenticate": "Bearer"},
            )
        await record(
            principal.sub, principal.role.value, "login", "auth", district=principal.district
        )
        return TokenOut(
            access_token=issue_token(cfg, principal, svc.clock.now()),
            expires_in=cfg.jwt_ttl_s,
            role=principal.role.value,
            district=principal.district,
            unit=principal.unit,
            scope=" ".join(principal.scopes),
        )

    @router.get("/v1/me", tags=["auth"], response_model=Me)
    async def me(principal: Principal = Depends(auth.principal())) -> Me:
        return Me(
            sub=principal.sub,
            role=principal.role.value,
            district=principal.district,
            unit=principal.unit,
            scopes=principal.scopes,
            personal_data=principal.role.value in pii_roles,
            jaeger_url=cfg.jaeger_url,
        )

    # -------------------------------------------------------------- read API

    def present(doc: dict[str, Any], principal: Principal) -> EntityOut:
        snapshot = doc.get("snapshot") or {}
        if principal.role.value not in pii_roles:
            snapshot = mask_personal_data(snapshot)
        fields = {k: v for k, v in doc.items() if k not in ("_id", "snapshot", "first_at")}
        return EntityOut(
            **fields,
            id=str(doc["_id"]),
            snapshot=snapshot,
            trace_url=trace_url(cfg, doc.get("trace_id")),
        )

    async def audit_read(
        caller: Caller, resource: str, docs: list[dict[str, Any]], action: str = "read"
    ) -> None:
        with_pii = [d for d in docs if has_personal_data(d.get("snapshot") or {})]
        if not with_pii:
            return
        unmasked = caller.principal.role.value in pii_roles
        await record(
            caller.principal.sub,
            caller.principal.role.value,
            action,
            resource,
            [str(d["_id"]) for d in with_pii],
            district=caller.principal.district,
            personal_data=unmasked,
            details={"masked": not unmasked, "count": len(with_pii)},
        )

    def entity_routes(
        path: str, collection: str, permission: Permission, extra: dict[str, Any]
    ) -> None:
        scoped = auth.scoped(permission)

        async def list_items(
            caller: Caller = Depends(scoped),
            district: str | None = Query(default=None, pattern=r"^\d{6}$"),
            unit: str | None = Query(default=None, max_length=100),
            status: str | None = Query(default=None, max_length=64),
            flag: str | None = Query(default=None, max_length=64, description="e.g. overdue"),
            subject_id: str | None = Query(
                default=None, max_length=200, description="the work order or case it is about"
            ),
            event_id: str | None = Query(
                default=None, max_length=200, description="an ingested event about its subject"
            ),
            key_id: str | None = Query(
                default=None, max_length=64, description="the API key that sent such an event"
            ),
            limit: int = limit_param(),
            offset: int = offset_param(),
        ) -> EntityPage:
            wanted: dict[str, Any] = {
                k: v
                for k, v in {
                    "subject_id": subject_id,
                    "event_ids": event_id,
                    "key_ids": key_id,
                }.items()
                if v
            }
            if district:
                wanted["district"] = district
            if unit:
                wanted["unit"] = unit
            if status:
                wanted["status"] = status
            if flag:
                wanted["flags"] = flag
            total, docs = await page(
                svc.db,
                collection,
                within(caller.scope, wanted),
                sort=storage.ENTITY_ORDER,
                limit=limit,
                offset=offset,
            )
            await audit_read(caller, collection, docs, "list")
            items = [present(d, caller.principal) for d in docs]
            return EntityPage(items=items, total=total, limit=limit, offset=offset)

        async def one_item(item_id: str, caller: Caller = Depends(scoped)) -> EntityDetail:
            doc = await svc.db[collection].find_one(within(caller.scope, {"_id": item_id}))
            if doc is None:
                raise HTTPException(404, detail=f"{path.rstrip('s')} {item_id} not found")
            await audit_read(caller, collection, [doc])
            events = (
                await svc.db[storage.TIMELINE]
                .find({"entity": doc["entity"], "entity_id": item_id})
                .sort([("time", 1), ("seq", 1)])
                .to_list()
            )
            timeline = [
                TimelineOut(
                    **{k: v for k, v in e.items() if k != "_id"},
                    id=str(e["_id"]),
                    trace_url=trace_url(cfg, e.get("trace_id")),
                )
                for e in events
            ]
            return EntityDetail(item=present(doc, caller.principal), timeline=timeline)

        router.add_api_route(
            f"/v1/{path}",
            list_items,
            methods=["GET"],
            tags=["read"],
            response_model=EntityPage,
            summary=f"List {path} in the caller's scope",
            **extra,
        )
        router.add_api_route(
            f"/v1/{path}/{{item_id}}",
            one_item,
            methods=["GET"],
            tags=["read"],
            response_model=EntityDetail,
            summary=f"One of {path} with its event timeline",
        )

    entity_routes("complaints", "complaints", Permission.READ_COMPLAINTS, {})
    entity_routes("cases", "cases", Permission.READ_CASES, {})
    entity_routes("filings", "filings", Permission.READ_FILINGS, {})
    entity_routes("notices", "notices", Permission.READ_NOTICES, {})

    # -------------------------------------------------------------- export, open data

    def export_route(entity: str, permission: Permission) -> None:
        columns = EXPORT_COLUMNS[entity]

        async def export(caller: Caller = Depends(auth.scoped(permission))) -> Response:
            docs = await storage.export_docs(svc.db, entity, caller.scope, cfg.export_max_rows)
            if docs:  # data left the system: who, what, how many rows
                await record(
                    caller.principal.sub,
                    caller.principal.role.value,
                    "export",
                    entity,
                    None,
                    district=caller.principal.district,
                    personal_data=False,
                    details={"rows": len(docs), "columns": [c.header for c in columns]},
                )
            return Response(
                to_csv(columns, docs),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{entity}.csv"'},
            )

        router.add_api_route(
            f"/v1/export/{entity}.csv",
            export,
            methods=["GET"],
            tags=["read"],
            response_class=Response,
            summary=f"CSV of the {entity} in the caller's scope (no personal data)",
        )

    export_route("complaints", Permission.READ_COMPLAINTS)
    export_route("cases", Permission.READ_CASES)
    export_route("filings", Permission.READ_FILINGS)
    export_route("leads", Permission.READ_LEADS)

    @router.get("/v1/open-data/monthly", tags=["open data"], response_model=OpenData)
    async def open_data() -> OpenData:
        """Anonymous: aggregate figures per district and month (counts only, no personal
        data, no ids); each entity counts in the month it first appeared."""
        return OpenData(figures=list(OPEN_DATA_FIGURES), rows=await storage.open_data(svc.db))

    def loose(doc: dict[str, Any]) -> LooseDoc:
        return LooseDoc(**{k: v for k, v in doc.items() if k != "_id"}, id=str(doc["_id"]))

    @router.get("/v1/overview", tags=["read"], response_model=Overview)
    async def overview(caller: Caller = Depends(auth.scoped(Permission.READ_OVERVIEW))) -> Overview:
        """KPIs per district within the caller's scope (线索处置率, overdue, bounces, grades...)."""
        rows = await storage.overview(svc.db, caller.scope)
        totals: dict[str, Any] = {}
        for row in rows:
            for k, v in row.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    totals[k] = totals.get(k, 0) + v
        raised, disposed = totals.get("leads_raised", 0), totals.get("leads_disposed", 0)
        totals["disposal_rate"] = round(disposed / raised, 4) if raised else None
        return Overview(districts=[DistrictKpis(**r) for r in rows], totals=totals)

    @router.get("/v1/leads", tags=["read"], response_model=LoosePage)
    async def leads(
        caller: Caller = Depends(auth.scoped(Permission.READ_LEADS)),
        district: str | None = Query(default=None, pattern=r"^\d{6}$"),
        kind: str | None = Query(default=None, max_length=64),
        status: Literal["open", "disposed"] | None = None,
        event_id: str | None = Query(
            default=None, max_length=200, description="an ingested event about the lead's subject"
        ),
        key_id: str | None = Query(
            default=None, max_length=64, description="the API key that sent such an event"
        ),
        subject_id: str | None = Query(
            default=None, max_length=200, description="the complaint, case or filing id"
        ),
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> LoosePage:
        """监督线索 in the caller's scope."""
        filters = {
            "district": district,
            "kind": kind,
            "status": status,
            "event_ids": event_id,
            "key_ids": key_id,
            "subject_id": subject_id,
        }
        wanted = {k: v for k, v in filters.items() if v}
        total, docs = await page(
            svc.db,
            storage.LEADS,
            within(caller.scope, wanted),
            sort=storage.LEADS_ORDER,
            limit=limit,
            offset=offset,
        )
        return LoosePage(items=[loose(d) for d in docs], total=total, limit=limit, offset=offset)

    @router.post("/v1/leads/{lead_id}/dispose", tags=["read"], response_model=LooseDoc)
    async def dispose(
        lead_id: str,
        disposition: Disposition,
        caller: Caller = Depends(auth.scoped(Permission.DISPOSE_LEADS)),
    ) -> LooseDoc:
        """Record how a lead was handled (处置); counts towards 线索处置率."""

        async def work(uow: UnitOfWork) -> dict[str, Any]:
            query = within(caller.scope, {"_id": lead_id})
            leads = await uow.collection(storage.LEADS)
            lead = await leads.find_one(query, session=uow.session)
            if lead is None:
                raise HTTPException(404, detail=f"lead {lead_id} not found")
            if lead.get("status") == "disposed":
                raise HTTPException(409, detail=f"lead {lead_id} is already disposed")
            change = {
                "outcome": disposition.outcome,
                "note": disposition.note,
                "by": caller.principal.sub,
                "at": uow.now(),
            }
            if disposition.outcome == TRANSFER_OUTCOME:  # 移送纪检监察: a 移送函 via notify
                transfer = transfer_request(lead, disposition.note, caller.principal.sub)
                await uow.request_notice(transfer)
                change["follow_up"] = follow_up(transfer)
            await leads.update_one(
                {"_id": lead_id},
                {"$set": {"status": "disposed", "disposition": change}},
                session=uow.session,
            )
            lead.update(status="disposed", disposition=change)
            await uow.emit(
                Envelope(
                    type=LEAD_DISPOSED_TYPE,
                    source=svc.source,
                    subject=f"lead/{lead_id}",
                    district=lead["district"],
                    partitionkey=lead_id,
                    data={
                        "lead": {**{k: v for k, v in lead.items() if k != "_id"}, "id": lead_id},
                        "change": change,
                    },
                ),
                SUPERVISION_LEADS,
            )
            return lead

        lead = await svc.run_in_uow(work)
        await record(
            caller.principal.sub,
            caller.principal.role.value,
            "dispose",
            "leads",
            [lead_id],
            district=lead.get("district"),
            details={"outcome": disposition.outcome},
        )
        return loose(lead)

    # -------------------------------------------------------------- operations

    @router.get("/v1/quarantine", tags=["operations"], response_model=LoosePage)
    async def quarantined(
        caller: Caller = Depends(auth.scoped(Permission.READ_QUARANTINE)),
        source: Literal["http", "kafka"] | None = None,
        code: str | None = Query(default=None, max_length=64),
        event_id: str | None = Query(default=None, max_length=200),
        key_id: str | None = Query(default=None, max_length=64, description="ingest API key"),
        subject_id: str | None = Query(
            default=None, max_length=200, description="the event's partitionkey (entity id)"
        ),
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> LoosePage:
        """Refused input with the reason and the raw body.

        Unauthenticated refusals are only sampled here (see ``/v1/ingest/refusals``).
        """
        filters = {
            "source": source,
            "code": code,
            "event_id": event_id,
            "key_id": key_id,
            "subject_id": subject_id,
        }
        wanted = {k: v for k, v in filters.items() if v}
        total, docs = await page(
            svc.db,
            storage.QUARANTINE,
            within(caller.scope, wanted),
            sort=storage.RECENT_FIRST,
            limit=limit,
            offset=offset,
            projection={"raw_b64": 0},
        )
        return LoosePage(items=[loose(d) for d in docs], total=total, limit=limit, offset=offset)

    @router.get("/v1/ingest/refusals", tags=["operations"])
    async def refusals(
        caller: Caller = Depends(auth.scoped(Permission.READ_QUARANTINE)),
        hours: int = Query(default=24, ge=1, le=24 * 31, description="how far back"),
    ) -> dict[str, Any]:
        """Unauthenticated ingest refusals counted per hour and code (only a sample is kept)."""
        since = svc.clock.now() - timedelta(hours=hours)
        rows = await storage.refusal_counts(svc.db, since)
        items = [{k: v for k, v in r.items() if k != "_id"} for r in rows]
        return {"items": items, "total": sum(int(r.get("count", 0)) for r in rows)}

    @router.get("/v1/dead-letters", tags=["operations"], response_model=LoosePage)
    async def dead_letters(
        caller: Caller = Depends(auth.scoped(Permission.READ_OPS)),
        topic: str | None = Query(default=None, max_length=300),
        limit: int = limit_param(),
        offset: int = offset_param(),
    ) -> LoosePage:
        """Records that failed every retry, per ``.dlt`` topic."""
        wanted = {"original_topic": topic} if topic else {}
        total, docs = await page(
            svc.db,
            storage.DEAD_LETTERS,
            within(caller.scope, wanted),
            sort=storage.RECENT_FIRST,
            limit=limit,
            offset=offset,
            projection={"headers_b64": 0, "value_b64": 0},
        )
        return LoosePage(items=[loose(d) for d in docs], total=total, limit=limit, offset=offset)

    @router.post(
        "/v1/dead-letters/{letter_id}/replay", tags=["operations"], response_model=LooseDoc
    )
    async def replay(
        letter_id: str, caller: Caller = Depends(auth.scoped(Permission.REPLAY))
    ) -> LooseDoc:
        """Republish the original record to its ``x-original-topic`` (consumers dedupe by id)."""
        doc = await svc.db[storage.DEAD_LETTERS].find_one(within(caller.scope, {"_id": letter_id}))
        if doc is None:
            raise HTTPException(404, detail=f"dead letter {letter_id} not found")
        topic = doc.get("original_topic")
        if not topic:
            raise HTTPException(409, detail="the record carries no x-original-topic header")
        headers = {
            k: base64.b64decode(v).decode("utf-8", "replace")
            for k, v in doc.get("headers_b64") or []
            if not k.startswith("x-")
        }
        headers["x-replayed-from"] = letter_id
        key = base64.b64decode(doc["key_b64"]) if doc.get("key_b64") else None
        await svc.publish_raw(topic, key, base64.b64decode(doc["value_b64"]), headers)  # type: ignore[arg-type]
        now = svc.clock.now()
        updated = await svc.db[storage.DEAD_LETTERS].find_one_and_update(
            {"_id": letter_id},
            {
                "$inc": {"replays": 1},
                "$set": {"replayed_at": now, "replayed_by": caller.principal.sub},
            },
            projection={"headers_b64": 0, "value_b64": 0},
            return_document=True,
        )
        await record(
            caller.principal.sub,
            caller.principal.role.value,
            "replay",
            "dead_letters",
            [letter_id],
            details={"topic": topic},
        )
        return loose(updated or doc)

    @router.get("/v1/health", tags=["operations"])
    async def health(
        caller: Caller = Depends(auth.scoped(Permission.READ_OPS)),
    ) -> dict[str, Any]:
        """Readiness of every service (``JIANDU_PEERS``) and of this gateway."""
        peers = await ops.peer_health(cfg)
        return {"self": await svc.readiness(), "services": peers, "ok": all(p["ok"] for p in peers)}

    @router.get("/v1/lag", tags=["operations"])
    async def lag(caller: Caller = Depends(auth.scoped(Permission.READ_OPS))) -> dict[str, Any]:
        """Consumer lag per group and topic (end offset minus committed offset)."""
        try:
            groups = await asyncio.wait_for(ops.consumer_lag(cfg), 15)
        except Exception as exc:
            raise HTTPException(503, detail=f"Kafka admin unavailable: {exc!r}") from exc
        return {"groups": groups, "total": sum(g["lag"] for g in groups)}

    @router.get("/v1/audit/verify", tags=["operations"], response_model=ChainReport)
    async def verify_audit(caller: Caller = Depends(auth.scoped(Permission.AUDIT))) -> ChainReport:
        """Re-hash the audit chain; the first altered or missing record is reported."""
        report = await audit().verify()
        await record(caller.principal.sub, caller.principal.role.value, "verify", "audit")
        return report

    @router.get("/v1/stream", tags=["read"], response_class=StreamingResponse)
    async def stream(
        request: Request,
        caller: Caller = Depends(auth.scoped(Permission.READ_FEED)),
        max_events: int | None = Query(default=None, ge=1, le=10_000, description="close after N"),
    ) -> StreamingResponse:
        """Live event feed (SSE) of every entity event in the caller's scope."""

        async def events() -> AsyncIterator[str]:
            sent = 0
            backlog = (
                await svc.db[storage.TIMELINE]
                .find(caller.scope)
                .sort("seq", -1)
                .limit(cfg.stream_backlog)
                .to_list()
            )
            last = max((d["seq"] for d in backlog), default=0)
            pending = list(reversed(backlog))
            yield "retry: 3000\n\n"
            idle = 0.0
            while True:
                for doc in pending:
                    item = {k: v for k, v in doc.items() if k not in ("_id", "change")}
                    item["id"] = str(doc["_id"])
                    item["trace_url"] = trace_url(cfg, doc.get("trace_id"))
                    data = json.dumps(item, default=str, ensure_ascii=False)
                    yield f"id: {doc['seq']}\nevent: entity\ndata: {data}\n\n"
                    sent += 1
                    if max_events is not None and sent >= max_events:
                        return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(cfg.stream_poll_s)
                idle += cfg.stream_poll_s
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                pending = (
                    await svc.db[storage.TIMELINE]
                    .find(within(caller.scope, {"seq": {"$gt": last}}))
                    .sort("seq", 1)
                    .limit(200)
                    .to_list()
                )
                if pending:
                    last = pending[-1]["seq"]
                    idle = 0.0

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -------------------------------------------------------------- console

    console_files = {
        p.relative_to(CONSOLE_DIR).as_posix(): p
        for p in CONSOLE_DIR.rglob("*")
        if p.is_file() and p.suffix in (".html", ".js", ".css", ".svg", ".png")
    }

    @router.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    @router.get("/console", include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/console/")

    @router.get("/console/{path:path}", include_in_schema=False)
    async def console(path: str) -> FileResponse:
        """The operations console (运行监控台): static files, no CDN."""
        file = console_files.get(path or "index.html")
        if file is None:
            raise HTTPException(404, detail="no such console file")
        return FileResponse(file, headers={"Cache-Control": "no-cache"})

    return router
