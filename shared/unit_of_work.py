"""Unit of work: one MongoDB transaction holding state writes, outgoing events and timers.

A unit of work spans a whole Kafka batch (or one timer batch, or one API command). Handlers
reach state only through it:

- :meth:`UnitOfWork.documents` / :class:`AggregateRepository`: whole documents by id, each
  loaded once (``$in`` prefetch for a batch, then served from memory: the identity map) and
  written back once, at commit, only if a handler ``put`` it;
- :meth:`UnitOfWork.collection`: raw access for queries and operator updates; it first
  writes what is pending, so a query sees every earlier event of the batch;
- :meth:`UnitOfWork.emit` (outbox) and :meth:`UnitOfWork.schedule` (durable timers): kept in
  memory and written with one command each just before commit.

What a handler got is a copy: changing it without ``put`` changes nothing, not even for the
next event of the batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Generic, TypeVar

from bson import ObjectId
from pydantic_core import to_jsonable_python
from pymongo import InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared.batching import ClaimHeld
from shared.clock import Clock, utc
from shared.contracts import NotificationRequest, SupervisionLead
from shared.envelope import Envelope
from shared.mongo import Document, write_together
from shared.outbox import OUTBOX, outbox_document, outbox_entry
from shared.retrying import transient_transaction
from shared.timers import TIMERS, cancel_timers_op, timer_fields, timer_write_op
from shared.topics import NOTIFY_REQUESTS, SUPERVISION_LEADS, Topic

A = TypeVar("A")


class DocumentRepository:
    """Whole documents of one collection, by ``_id``, through the unit of work's identity map."""

    def __init__(self, uow: UnitOfWork, name: str) -> None:
        self._uow = uow
        self.name = name
        self._known: dict[Any, Document | None] = {}
        self._dirty: dict[Any, Document] = {}
        self._new: dict[Any, Document] = {}
        self.changed: set[Any] = set()
        """Ids this unit put or added (kept after a flush): what a look-up must re-check."""

    async def load(self, ids: Iterable[Any]) -> None:
        """Prefetch: one ``$in`` query for every id not in memory yet (misses remembered)."""
        wanted = [i for i in dict.fromkeys(ids) if i is not None and i not in self._known]
        if not wanted:
            return
        coll = self._uow._db[self.name]
        found = {
            d["_id"]: d
            for d in await coll.find({"_id": {"$in": wanted}}, session=self._uow.session).to_list()
        }
        for doc_id in wanted:
            self._known[doc_id] = found.get(doc_id)
        self._uow.reads += 1

    async def get(self, doc_id: Any) -> Document | None:
        """A copy of the document (``None`` if there is none), read at most once per unit."""
        if doc_id not in self._known:
            await self.load([doc_id])
        doc = self._known[doc_id]
        return clone(doc) if doc is not None else None

    async def get_many(self, ids: Iterable[Any]) -> dict[Any, Document]:
        ids = list(ids)
        await self.load(ids)
        return {i: clone(d) for i in ids if (d := self._known.get(i)) is not None}

    def put(self, doc: Document, *, fresh: bool = False) -> None:
        """Keep ``doc`` as the new whole document; written once, at commit.

        ``fresh``: nobody else holds ``doc`` (e.g. a model just dumped), so it is kept as
        it is instead of copied.
        """
        stored = doc if fresh else clone(doc)
        self._known[doc["_id"]] = stored
        self.changed.add(doc["_id"])
        if doc["_id"] in self._new:
            self._new[doc["_id"]] = stored
        else:
            self._dirty[doc["_id"]] = stored

    def add(self, doc: Document, *, fresh: bool = False) -> None:
        """A document that does not exist yet: inserted at commit (cheaper than a replace).

        If it exists after all (a racing writer), the insert fails and so does the unit:
        its work runs again and then finds the document.
        """
        stored = doc if fresh else clone(doc)
        self._known[doc["_id"]] = stored
        self.changed.add(doc["_id"])
        self._new[doc["_id"]] = stored

    def added(self) -> list[Document]:
        """The documents added in this unit and not written yet, as kept, not copies: a
        document the unit keeps filling until commit (a feed page)."""
        return list(self._new.values())

    def forget(self) -> None:
        """Drop what memory holds (after a raw write the database is the truth)."""
        self._known = {}

    @property
    def pending(self) -> int:
        """Documents this repository will write at commit."""
        return len(self._new) + len(self._dirty)

    def write_models(self) -> list[InsertOne[Document] | ReplaceOne[Document]]:
        """What is pending, as models of a client-level bulk write (then nothing is)."""
        ns = f"{self._uow._db.name}.{self.name}"
        new, self._new = self._new, {}
        dirty, self._dirty = self._dirty, {}
        models: list[InsertOne[Document] | ReplaceOne[Document]] = [
            InsertOne(doc, namespace=ns) for doc in new.values()
        ]
        models += [
            ReplaceOne({"_id": k}, doc, upsert=True, namespace=ns) for k, doc in dirty.items()
        ]
        return models

    async def flush(self) -> None:
        coll = self._uow._db[self.name]
        session = self._uow.session
        if self._new:
            new, self._new = self._new, {}
            await coll.insert_many(list(new.values()), ordered=True, session=session)
            self._uow.writes += 1
        if self._dirty:
            dirty, self._dirty = self._dirty, {}
            ops = [ReplaceOne({"_id": k}, doc, upsert=True) for k, doc in dirty.items()]
            await coll.bulk_write(ops, ordered=True, session=session)
            self._uow.writes += 1


class AggregateRepository(Generic[A]):
    """Typed aggregates over a :class:`DocumentRepository` (a model in, a model out).

    ``to_doc`` must build a new document on each call (a model dump does): it is kept as
    it is, not copied again (``fresh=False`` if yours returns something it keeps).
    """

    def __init__(
        self,
        documents: DocumentRepository,
        to_doc: Callable[[A], Document],
        from_doc: Callable[[Document], A],
        *,
        fresh: bool = True,
    ) -> None:
        self.documents = documents
        self._to_doc = to_doc
        self._from_doc = from_doc
        self._fresh = fresh

    async def load(self, ids: Iterable[Any]) -> None:
        await self.documents.load(ids)

    async def get(self, doc_id: Any) -> A | None:
        doc = await self.documents.get(doc_id)
        return self._from_doc(doc) if doc is not None else None

    def put(self, aggregate: A) -> None:
        self.documents.put(self._to_doc(aggregate), fresh=self._fresh)

    def add(self, aggregate: A) -> None:
        """A new aggregate: inserted at commit (see :meth:`DocumentRepository.add`)."""
        self.documents.add(self._to_doc(aggregate), fresh=self._fresh)


@dataclass(frozen=True)
class Lookup:
    """Prefetch key for documents found by a field other than ``_id`` (``uow.lookup``)."""

    collection: str
    field: str


class FieldIndex:
    """Documents of a collection by one field's value, loaded for a whole batch with one
    ``$in`` query, as the unit sees them: what it wrote through ``uow.documents`` of that
    collection earlier in the batch is seen (no query per event to see it)."""

    def __init__(self, uow: UnitOfWork, lookup: Lookup, projection: Mapping[str, Any] | None):
        self._uow = uow
        self.lookup = lookup
        self._projection = dict(projection) if projection else None
        self._known: dict[Any, list[Document]] = {}

    async def load(self, values: Iterable[Any]) -> None:
        wanted = [v for v in dict.fromkeys(values) if v is not None and v not in self._known]
        if not wanted:
            return
        coll = self._uow._db[self.lookup.collection]
        field = self.lookup.field
        found = await coll.find(
            {field: {"$in": wanted}}, self._projection, session=self._uow.session
        ).to_list()
        fresh = set(wanted)
        for value in wanted:
            self._known[value] = []
        for doc in found:
            held = doc.get(field)
            for value in held if isinstance(held, list) else [held]:
                if isinstance(value, Hashable) and value in fresh:
                    self._known[value].append(doc)
        self._uow.reads += 1

    async def find(self, value: Any) -> list[Document]:
        """Copies of the documents whose field equals (or, an array, holds) ``value``: the
        stored ones, each replaced by the unit's own version when it holds one, and the
        documents the unit added or changed to match."""
        if value not in self._known:
            await self.load([value])
        stored = self._known[value]
        repo = self._uow._repos.get(self.lookup.collection)
        if repo is None:
            return [clone(doc) for doc in stored]
        held = repo._known
        found = [held.get(doc["_id"], doc) for doc in stored]
        stored_ids = {doc["_id"] for doc in stored}
        # only what the unit changed can match without having been stored as matching
        found += [held.get(i) for i in repo.changed if i not in stored_ids]
        field = self.lookup.field
        return [clone(doc) for doc in found if doc is not None and _holds(doc.get(field), value)]


_IMMUTABLE = (str, int, float, bool, bytes, type(None), datetime, date, time, Decimal, ObjectId)


def clone(value: Any) -> Any:
    """A deep copy of a document: dicts and lists rebuilt, immutable leaves shared.

    Several times faster than ``copy.deepcopy`` on BSON-shaped data (no memo, no
    dispatch by reflection); anything else is deep-copied as before.
    """
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)


def _holds(field_value: Any, value: Any) -> bool:
    """A field equals ``value``, or is an array that holds it (MongoDB's equality match)."""
    return field_value == value or (isinstance(field_value, list) and value in field_value)


@dataclass
class UnitOfWork:
    """What a handler gets: repositories, raw collections, and ways to say what follows."""

    _db: AsyncDatabase[Document]
    session: AsyncClientSession | None
    clock: Clock
    source: str
    topic_prefix: str = ""
    write_together_max: int = 0
    """``JIANDU_WRITE_TOGETHER_MAX``: see :meth:`flush`."""
    instance: str = ""
    """The replica this unit runs in (its timer wheel fires the timers the unit schedules)."""
    emitted: list[Envelope] = field(default_factory=list)
    outbox: list[Document] = field(default_factory=list)
    """Outbox documents this unit wrote: after commit, this replica's relay publishes them
    (from memory: they are not read back)."""
    scheduled: dict[str, datetime] = field(default_factory=dict)
    """Timers this unit scheduled (id → due): after commit, this replica's wheel fires them."""
    reads: int = 0
    writes: int = 0
    _outbox: list[Document] = field(default_factory=list)
    _timers: dict[str, Document | None] = field(default_factory=dict)
    """Timer id → the fields to write, or ``None``: cancel it (the last word on an id wins)."""
    _fired_now: dict[str, Document] = field(default_factory=dict)
    """Timers this unit fired itself (:meth:`fire_now`) → their fields as fired."""
    _firings_counted: set[str] = field(default_factory=set)
    _fired: list[UpdateMany] = field(default_factory=list)
    """The timer wheel's flips of the timers this unit fires (:meth:`fire_timers`)."""
    _repos: dict[str, DocumentRepository] = field(default_factory=dict)
    _indexes: dict[Lookup, FieldIndex] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock.now()

    # -- state ----------------------------------------------------------------------------

    async def claim(self, name: str, doc_id: str) -> None:
        """Write the document ``doc_id`` of ``name`` now, before any other work of the unit.

        For a document that every transaction of a kind writes, such as the gateway's feed
        counter: written at commit, as the identity map writes, two replicas' batches both did
        all their work and one of them lost it at commit (a write conflict), batch after
        batch. Written first, the server refuses the second writer at once (its write meets
        the first one's uncommitted write, or a newer commit than its snapshot): it raises
        :class:`ClaimHeld` having done nothing, and runs again once the first has committed.
        The claim counts itself in the document (``claims``) and names its replica
        (``claimed_by``); read the document afterwards through :meth:`documents` as usual.
        """
        try:
            await self._db[name].update_one(
                {"_id": doc_id},
                # ``$inc``: a write that always changes the document (a ``$set`` of the same
                # values would change nothing, and an unchanged document takes no lock)
                {"$inc": {"claims": 1}, "$set": {"claimed_by": self.instance}},
                upsert=True,
                session=self.session,
            )
        except PyMongoError as exc:
            if transient_transaction(exc):
                raise ClaimHeld(f"{name}/{doc_id} is written by another transaction") from exc
            raise
        self.writes += 1

    def lookup(self, lookup: Lookup, projection: Mapping[str, Any] | None = None) -> FieldIndex:
        """Documents by a field (see :class:`FieldIndex`), one per unit and lookup."""
        index = self._indexes.get(lookup)
        if index is None:
            index = self._indexes[lookup] = FieldIndex(self, lookup, projection)
        return index

    def documents(self, name: str) -> DocumentRepository:
        repo = self._repos.get(name)
        if repo is None:
            repo = self._repos[name] = DocumentRepository(self, name)
        return repo

    async def collection(self, name: str) -> AsyncCollection[Document]:
        """Raw access to one collection for queries and operator updates (pass
        ``session=uow.session``).

        What is pending for ``name`` is written first, so a query sees every earlier change
        of this unit (the other collections' writes stay batched); what memory held of it is
        dropped, since a raw write may change it.
        """
        repo = self._repos.get(name)
        if repo is not None:
            await repo.flush()
            repo.forget()
        if name == TIMERS:
            await self._flush_timers()
        return self._db[name]

    def _timer_models(self) -> list[UpdateOne | UpdateMany]:
        """The pending timer writes (then none are): the wheel's flips, each schedule, and the
        cancels as one statement."""
        timers, self._timers = self._timers, {}
        fired, self._fired = self._fired, []
        ns = f"{self._db.name}.{TIMERS}"
        models: list[UpdateOne | UpdateMany] = [*fired]
        models += [
            timer_write_op(timer_id, fields, fired=self._count_firing(timer_id), namespace=ns)
            for timer_id, fields in timers.items()
            if fields is not None
        ]
        cancelled = [timer_id for timer_id, fields in timers.items() if fields is None]
        if cancelled:
            models.append(cancel_timers_op(cancelled, ns))
        return models

    def _count_firing(self, timer_id: str) -> bool:
        """Whether this write of ``timer_id`` counts its firing by this unit (once)."""
        if timer_id not in self._fired_now or timer_id in self._firings_counted:
            return False
        self._firings_counted.add(timer_id)
        return True

    async def _flush_timers(self) -> None:
        if self._timers or self._fired:
            ops = self._timer_models()
            await self._db[TIMERS].bulk_write(ops, ordered=True, session=self.session)
            self.writes += 1

    async def flush(self) -> None:
        """Write everything pending, the outbox last; called once, just before commit.

        Up to ``write_together_max`` documents go in ONE round trip, MongoDB 8's ``bulkWrite``
        command across collections (a small batch's latency is its round trips: a hotline
        batch took six write commands, one per collection and kind). More go per collection,
        one ``insert_many`` / ``bulk_write`` each: SecantusDB applies those with less CPU per
        document than ``bulkWrite``'s one-by-one operations, and a large batch is bound by
        that CPU, not by its few round trips.
        """
        entries, self._outbox = self._outbox, []
        outbox = outbox_document(entries, self.instance or None) if entries else None
        if outbox is not None:
            self.outbox.append(outbox)
        pending = sum(r.pending for r in self._repos.values()) + len(self._timers)
        pending += len(self._fired)
        if pending + (outbox is not None) > self.write_together_max:
            for repo in self._repos.values():
                await repo.flush()
            await self._flush_timers()
            if outbox is not None:
                await self._db[OUTBOX].insert_one(outbox, session=self.session)
                self.writes += 1
            return
        models: list[Any] = [m for repo in self._repos.values() for m in repo.write_models()]
        models += self._timer_models()
        if outbox is not None:
            models.append(InsertOne(outbox, namespace=f"{self._db.name}.{OUTBOX}"))
        if models:
            await write_together(self._db.client, models, self.session)
            self.writes += 1

    # -- what follows -------------------------------------------------------------------

    async def emit(self, event: Envelope, topic: Topic | str) -> None:
        """Publish ``event`` after commit (outbox); written to the outbox by ``flush``."""
        self._outbox.append(outbox_entry(event, topic, self.topic_prefix))
        self.emitted.append(event)

    async def emit_change(
        self,
        topic: Topic | str,
        event_type: str,
        entity: str,
        entity_id: str,
        district: str,
        state: Any,
        change: Mapping[str, Any],
    ) -> Envelope:
        """Announce a change of one entity: ``subject`` ``"{entity}/{id}"``, keyed by its id,
        the data its whole state under ``entity`` and what changed under ``"change"``."""
        event = Envelope(
            type=event_type,
            source=self.source,
            subject=f"{entity}/{entity_id}",
            district=district,
            partitionkey=entity_id,
            time=self.now(),
            data={entity: state, "change": to_jsonable_python(change)},
        )
        await self.emit(event, topic)
        return event

    async def request_notice(self, request: NotificationRequest) -> None:
        await self.emit(request.to_event(self.source), NOTIFY_REQUESTS)

    async def raise_lead(self, lead: SupervisionLead) -> None:
        await self.emit(lead.to_event(self.source), SUPERVISION_LEADS)

    async def schedule(
        self,
        timer_id: str,
        kind: str,
        due: datetime,
        payload: dict[str, Any] | None = None,
        subject: str | None = None,
    ) -> None:
        """Create or move a pending timer (the last word on one id in this unit wins)."""
        self._timers[timer_id] = timer_fields(kind, due, payload, subject, self.instance)
        self.scheduled[timer_id] = due

    async def cancel(self, timer_id: str) -> None:
        """Cancel the timer if it is pending; one this unit fired stays fired."""
        fired = self._fired_now.get(timer_id)
        self._timers[timer_id] = dict(fired) if fired is not None else None
        self.scheduled.pop(timer_id, None)

    def due_now(self, kinds: Iterable[str]) -> list[Document]:
        """The timers of ``kinds`` this unit scheduled that are due already and that it has
        not fired itself, as the wheel would read them, earliest first."""
        now, wanted = self.now(), set(kinds)
        due = [
            {"_id": timer_id, **fields}
            for timer_id, fields in self._timers.items()
            if fields is not None
            and fields["status"] == "pending"
            and fields["kind"] in wanted
            and utc(fields["due"]) <= now
            and timer_id not in self._fired_now
        ]
        return sorted(due, key=lambda t: (utc(t["due"]), t["_id"]))

    def fire_now(self, timer: Document) -> None:
        """This unit fires ``timer`` (one of :meth:`due_now`) itself: written as fired at
        commit, with the handler's writes, and not handed to the wheel.

        Exactly once as with the wheel: the timer was pending in no committed state, or, if it
        was, a wheel firing it meanwhile makes this unit's write a conflict, and the rerun
        sees it fired. Called before its handler runs, so that a handler re-arming it wins.
        """
        fields = {key: value for key, value in timer.items() if key != "_id"}
        fired = {**fields, "status": "fired", "fired_at": self.now(), "fired_by": self.instance}
        self._fired_now[timer["_id"]] = fired
        self._timers[timer["_id"]] = dict(fired)
        self.scheduled.pop(timer["_id"], None)

    def fire_timers(self, flip: UpdateMany) -> None:
        """The timer wheel's flip of the timers it fires in this unit to ``fired``: written
        at commit with the rest, before the handlers' own timer writes (one re-arming the
        timer it runs in must win). Exactly once still: another wheel that fired them after
        this unit's snapshot makes the flip a write conflict, and the rerun finds them fired.
        """
        self._fired.append(flip)

    def discard_pending(self) -> None:
        """Forget what this unit would write (its transaction was aborted)."""
        self._outbox.clear()
        self.emitted.clear()
        self._timers.clear()
        self._fired_now.clear()
        self._firings_counted.clear()
        self._fired.clear()
        self._repos.clear()
        self._indexes.clear()
        self.scheduled.clear()
        self.outbox.clear()
