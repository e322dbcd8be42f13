"""MongoDB plumbing: one AsyncMongoClient per service process, index creation at start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ClientBulkWriteException,
    CollectionInvalid,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

Document = dict[str, Any]
IndexPlan = Mapping[str, Sequence[IndexModel]]
DUPLICATE_KEY = 11000

MAX_IDLE_MS = 120_000
"""A pooled connection idle longer than this is closed and a new one opened instead of being
used. The server, or a load balancer on the way, may drop an idle connection without the async
driver noticing (it does not read from an idle connection, so it sees no EOF): the next write on
it fails with ``AutoReconnect`` after the request went out. SecantusDB drops connections idle
for 300 s; cloud load balancers after 240–350 s."""


def make_client(
    uri: str,
    app_name: str,
    listeners: Sequence[monitoring._EventListener] = (),
    *,
    max_idle_ms: int = MAX_IDLE_MS,
) -> AsyncMongoClient[Document]:
    """A client with UTC-aware datetimes that never reuses a connection idle longer than
    ``max_idle_ms`` (see :data:`MAX_IDLE_MS`); call from the event loop that will use it."""
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=10000,
        maxIdleTimeMS=max_idle_ms,
        event_listeners=list(listeners),
    )


async def update_by_id(
    coll: Any,
    query: Document,
    update: Document,
    *,
    upsert: bool = False,
    projection: Mapping[str, Any] | None = None,
    session: AsyncClientSession | None = None,
) -> Document | None:
    """``find_one_and_update(..., return_document=AFTER)`` for a ``query`` on ``_id``, as an
    ``update_one`` then a read by ``_id``: the document after the update, or None when
    nothing matched. SecantusDB answers ``findAndModify`` by reading the whole collection
    (measured: 150 ms with 20,000 documents, the same with ``_id`` alone), ``update_one`` and
    ``find_one`` by ``_id`` in about a millisecond. Not one atomic step: the read may see a
    later write too, which none of the callers minds (they read what they just wrote)."""
    result = await coll.update_one(query, update, upsert=upsert, session=session)
    if result.matched_count == 0 and result.upserted_id is None:
        return None
    found: Document | None = await coll.find_one(
        {"_id": query["_id"] if result.upserted_id is None else result.upserted_id},
        projection,
        session=session,
    )
    return found


class CommandCounter(monitoring.CommandListener):
    """Counts the MongoDB commands a service sends, and the documents they write, by name.

    Exposed on ``/metrics``; ``jiandu bench`` divides them by the events of a run (the cost
    of an event is the commands and written documents it takes, not only its latency).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "jiandu_mongo_commands", "MongoDB commands sent", ["command"], registry=registry
        )
        self.documents = Counter(
            "jiandu_mongo_documents_written",
            "Documents inserted, updated or deleted by MongoDB commands",
            ["command"],
            registry=registry,
        )

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.labels(event.command_name).inc()

    def totals(self) -> dict[str, dict[str, float]]:
        """``{"commands": {name: n}, "documents": {name: n}}`` so far."""
        out: dict[str, dict[str, float]] = {"commands": {}, "documents": {}}
        for key, counter in (("commands", self.commands), ("documents", self.documents)):
            for metric in counter.collect():
                for sample in metric.samples:
                    if sample.name.endswith("_total"):
                        out[key][sample.labels["command"]] = sample.value
        return out

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Documents the server says it wrote (an ``update_many`` may write thousands)."""
        reply, name = event.reply, event.command_name
        if name in ("insert", "delete"):
            written = int(reply.get("n", 0))
        elif name == "update":
            written = int(reply.get("nModified", 0)) + len(reply.get("upserted") or ())
        elif name == "findAndModify":
            written = int((reply.get("lastErrorObject") or {}).get("n", 0))
        elif name == "bulkWrite":  # MongoDB 8's write across collections (write_together)
            written = sum(int(reply.get(k, 0)) for k in ("nInserted", "nModified", "nUpserted"))
            written += int(reply.get("nDeleted", 0))
        else:
            return
        if written:
            self.documents.labels(name).inc(written)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def write_together(
    client: AsyncMongoClient[Document],
    models: Sequence[Any],
    session: AsyncClientSession | None,
) -> None:
    """Write ``models`` (each with its ``namespace``) in order, in ONE round trip: MongoDB 8's
    ``bulkWrite`` command (SecantusDB has it too).

    Its error comes back as the error the same write to one collection would raise, so that
    retry rules stay written once: a write conflict as the ``OperationFailure`` that carries
    the ``TransientTransactionError`` label, a duplicate key as ``DuplicateKeyError``.
    """
    try:
        await client.bulk_write(list(models), session=session, ordered=True)
    except ClientBulkWriteException as exc:
        _raise_plainly(exc)


def _raise_plainly(exc: ClientBulkWriteException) -> NoReturn:
    if isinstance(exc.error, PyMongoError):
        raise exc.error from exc
    errors: list[Any] = list(exc.write_errors or ())  # dicts as the server sent them
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    if first.get("code") == DUPLICATE_KEY:
        raise DuplicateKeyError(str(first.get("errmsg", "")), DUPLICATE_KEY, first) from exc
    raise exc


async def ensure_indexes(
    db: AsyncDatabase[Document],
    plan: IndexPlan,
    retired: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Every collection of the plan exists (none is created inside a transaction, where two
    first writers would conflict) with its indexes.

    Indexes no query needs any more are dropped where they still exist, since every index
    costs every write to its collection: those ``retired`` names, and any ``list_*`` index
    (:func:`list_indexes` owns the prefix) the plan no longer names.
    """
    retired = retired or {}
    existing = set(await db.list_collection_names())
    for collection, indexes in plan.items():
        if collection not in existing:
            try:
                await db.create_collection(collection)
            except CollectionInvalid:  # another replica created it meanwhile
                pass
        wanted = {str(model.document["name"]) for model in indexes}
        async for info in await db[collection].list_indexes():
            name = str(info.get("name", ""))
            stale = name.startswith("list_") or name in retired.get(collection, ())
            if stale and name not in wanted:
                try:
                    await db[collection].drop_index(name)
                except OperationFailure:  # another replica dropped it meanwhile
                    pass
        if indexes:
            await db[collection].create_indexes(list(indexes))


SortOrder = Sequence[tuple[str, int]]


async def page(
    db: AsyncDatabase[Document],
    collection: str,
    query: Mapping[str, Any],
    *,
    sort: SortOrder,
    limit: int,
    offset: int,
    projection: Mapping[str, Any] | None = None,
) -> tuple[int, list[Document]]:
    """One page of a list query and the total it comes from.

    The sort must be served by an index (see ``tests/platform/test_query_plans.py``). An
    unfiltered total comes from the collection's metadata: counting every document would scan
    the whole collection on each page of the city-wide lists.
    """
    coll = db[collection]
    total = (
        await coll.count_documents(dict(query)) if query else await coll.estimated_document_count()
    )
    cursor = coll.find(dict(query), dict(projection) if projection else None)
    docs = await cursor.sort(list(sort)).skip(offset).limit(limit).to_list()
    return total, docs


def list_indexes(order: SortOrder, filters: Sequence[str] = ()) -> list[IndexModel]:
    """The indexes that serve a paged list in ``order`` with optional equality filters.

    One index on the order itself (the unfiltered, city-wide page) and, per filter field, the
    field followed by the order (equality, then sort: the ESR rule), so no page is collected
    by a collection scan or sorted in memory. Names start with ``list_`` so they never clash
    with an existing index of the same name.
    """
    leading = order[0][0] if order else None
    return [
        IndexModel(list(order), name="list_order"),
        # a filter on the order's own first field is served by list_order already
        *(IndexModel([(f, 1), *order], name=f"list_{f}") for f in filters if f != leading),
    ]


async def get_document(
    db: AsyncDatabase[Document], collection: str, doc_id: str
) -> Document | None:
    """One document by id, for the read side (handlers go through the unit of work)."""
    return await db[collection].find_one({"_id": doc_id})
