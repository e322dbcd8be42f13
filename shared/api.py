"""What every service's HTTP API shares: domain refusals, read models, pages, commands.

Handlers raise ``NotFound``, ``Forbidden``, ``Conflict`` and ``Invalid``; ``run_command`` runs
an API command in one transaction and turns those into 404, 403, 409 and 422 with the reason,
so a refused request is never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.envelope import DISTRICT_CODE, Envelope
from shared.identity import (
    Caller,
    Permission,
    guarded_router,
    rename_scope,
    require_in_scope,
    within,
)
from shared.mongo import Document, SortOrder, get_document, page
from shared.retrying import DUPLICATE_KEYS, transient_transaction
from shared.service import Service
from shared.topics import AUDIT_EVENTS
from shared.unit_of_work import AggregateRepository, UnitOfWork

T = TypeVar("T")
AUDIT_READ_TYPE = "jiandu.audit.read"
CITY_CODE = "310000"
M = TypeVar("M", bound=BaseModel)
C = TypeVar("C")
ReadModel = TypeVar("ReadModel", bound="Out")


def service_of(request: Request) -> Service:
    """The service answering the request (its ``http_app`` put it on the app's state)."""
    service = request.app.state.service
    assert isinstance(service, Service)
    return service


ServiceDep = Annotated[Service, Depends(service_of)]
"""The running service, for module-level routers: ``async def route(svc: ServiceDep)``."""


def component(kind: type[C]) -> Callable[[Request], C]:
    """Dependency: the object of type ``kind`` the service was given with ``Service.provide``
    (its workflow, a catalogue...): ``WorkflowDep = Annotated[W, Depends(component(W))]``."""

    def dependency(request: Request) -> C:
        return service_of(request).component(kind)

    dependency.__name__ = f"component_{kind.__name__}"
    return dependency


class NotFound(LookupError):
    """The addressed entity does not exist (HTTP 404)."""


class Forbidden(PermissionError):
    """The caller may not do this to the entity (HTTP 403)."""


class Conflict(ValueError):
    """The command contradicts the entity's current state (HTTP 409); the message says why."""


class Invalid(ValueError):
    """The command's input breaks a rule its schema cannot check (HTTP 422); the message
    says which."""


async def existing(repository: AggregateRepository[T], aggregate_id: str, what: str) -> T:
    """The aggregate a command addresses; ``NotFound`` ("<what> <id> not found") if none."""
    aggregate = await repository.get(aggregate_id)
    if aggregate is None:
        raise NotFound(f"{what} {aggregate_id} not found")
    return aggregate


class Out(BaseModel):
    """Read models: the stored document's ``_id`` becomes ``id``; internal fields are dropped."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def of(cls: type[M], doc: Document) -> M:
        return cls.model_validate({"id": doc["_id"], **doc})


class Page(BaseModel, Generic[T]):
    total: int
    limit: int
    offset: int
    items: list[T]


async def run_command(
    svc: Service, work: Callable[[UnitOfWork], Awaitable[T]], attempts: int = 5
) -> T:
    """One transaction for an API command; refusals become 4xx with the reason.

    ``run_in_uow`` already reruns write conflicts. A duplicate key means a concurrent request
    inserted the same entity first: the command runs again and now sees it (usually a 409).
    Storage still in conflict after that answers 503 (retry later), not 500.
    """
    try:
        return await DUPLICATE_KEYS.times(attempts)(svc.run_in_uow, work)
    except NotFound as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except Forbidden as exc:
        raise HTTPException(403, detail=str(exc)) from exc
    except Conflict as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except Invalid as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    except DuplicateKeyError as exc:
        raise HTTPException(409, detail="already exists (concurrent request)") from exc
    except PyMongoError as exc:
        if not transient_transaction(exc):
            raise
        raise HTTPException(503, detail="storage busy, retry") from exc


def limit_param() -> Any:
    """The page size every list endpoint takes."""
    return Query(50, ge=1, le=500, description="page size")


def offset_param() -> Any:
    """How many items to skip; bounded, since the database walks every skipped item."""
    return Query(0, ge=0, le=1_000_000, description="items to skip")


class AuditRead(BaseModel):
    """``jiandu.audit.read``: who read which personal data unmasked, where and when (the
    gateway chains it into its hash-chained audit log)."""

    actor: str
    role: str
    district: str | None = None
    unit: str | None = None
    service: str
    method: str
    path: str
    resource_ids: list[str]
    at: str


def audit_read_event(svc: Service, caller: Caller, request: Request, ids: list[str]) -> Envelope:
    """``jiandu.audit.read``: who read which personal data, unmasked, where and when."""
    p = caller.principal
    district = p.district if p.district and DISTRICT_CODE.match(p.district) else CITY_CODE
    return Envelope(
        type=AUDIT_READ_TYPE,
        source=svc.source,
        subject=request.url.path[:500],
        district=district,
        partitionkey=p.sub[:200] or "anonymous",
        data=AuditRead(
            actor=p.sub,
            role=p.role.value,
            district=p.district,
            unit=p.unit,
            service=svc.name,
            method=request.method,
            path=request.url.path,
            resource_ids=ids,
            at=svc.clock.now().isoformat(),
        ).model_dump(),
    )


async def audit_read(caller: Caller, request: Request, ids: list[str]) -> None:
    """Send an unmasked personal-data read, through the outbox, to the gateway's audit log."""
    svc = service_of(request)
    event = audit_read_event(svc, caller, request, ids)
    await svc.run_in_uow(lambda uow: uow.emit(event, AUDIT_EVENTS))


def audited_router(**kwargs: Any) -> APIRouter:
    """A module-level API router: every route needs a token (``shared.identity``), answers
    are masked by role, and each unmasked personal-data read is sent, through the outbox, to
    the gateway's hash-chained audit log (``audit.events``) before the answer leaves."""
    return guarded_router(audit_read, **kwargs)


@dataclass(frozen=True)
class ScopedReads:
    """The read side behind one permission: only what lies in the caller's scope."""

    svc: Service
    permission: Permission

    async def page(
        self,
        caller: Caller,
        collection: str,
        query: dict[str, Any],
        sort: SortOrder,
        limit: int,
        offset: int,
    ) -> tuple[int, list[Document]]:
        """One page of what the caller may see: its district or unit only."""
        caller.require(self.permission)
        scoped = within(caller.scope, query)
        return await page(self.svc.db, collection, scoped, sort=sort, limit=limit, offset=offset)

    async def one(
        self,
        caller: Caller,
        collection: str,
        doc_id: str,
        what: str,
        fields: Mapping[str, str] | None = None,
    ) -> Document:
        """The document when it exists and lies in the caller's scope, else 404."""
        caller.require(self.permission)
        doc = await get_document(self.svc.db, collection, doc_id)
        return require_in_scope(caller, doc, f"{what} {doc_id}", dict(fields or {}))


@dataclass(frozen=True)
class ScopedCollection:
    """One collection as an API reads it: behind one permission, in the caller's scope, in
    its list order (a list route is then one call: ``COLLECTION.page(...)``)."""

    name: str
    what: str
    """What one document is, for a 404 ("case X not found")."""
    order: SortOrder
    permission: Permission
    hidden: Mapping[str, int] | None = None
    """Large fields a list leaves out (the item has them)."""
    scope_fields: Mapping[str, str] = field(default_factory=dict)
    """The scope's ``district``/``unit`` under another name in this collection."""

    async def page(
        self,
        svc: Service,
        caller: Caller,
        filters: Mapping[str, Any],
        model: type[ReadModel],
        limit: int,
        offset: int,
    ) -> Page[ReadModel]:
        """One page of what the caller may see; a filter given as ``None`` is not applied."""
        caller.require(self.permission)
        given = {key: value for key, value in filters.items() if value is not None}
        scope = rename_scope(caller.scope, dict(self.scope_fields))
        total, docs = await page(
            svc.db,
            self.name,
            within(scope, given),
            sort=self.order,
            limit=limit,
            offset=offset,
            projection=self.hidden,
        )
        return Page(total=total, limit=limit, offset=offset, items=[model.of(doc) for doc in docs])

    async def one(self, svc: Service, caller: Caller, doc_id: str) -> Document:
        """The document when it exists and lies in the caller's scope, else 404."""
        reads = ScopedReads(svc, self.permission)
        return await reads.one(caller, self.name, doc_id, self.what, self.scope_fields)
