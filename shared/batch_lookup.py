"""Look-ups by a field that see the unit of work's own writes.

``uow.lookup(Lookup(c, field))`` serves a whole batch from one ``$in`` query, but only what
was stored before the batch (``FieldIndex``: "for collections the unit only reads"). A
handler that also writes ``c`` through ``uow.documents(c)`` needs the next event of the
batch to see those writes, as a raw query after a flush would. :func:`find_in_unit` gives
that without a query per event: the stored documents, each replaced by the unit's own
version when it holds one, plus the documents the unit added or changed to match.

It reads what the unit's :class:`~shared.unit_of_work.DocumentRepository` holds in memory;
``FieldIndex.find`` could do the same once the runtime offers it (then this module goes).
"""

from __future__ import annotations

import copy
from typing import Any

from shared.mongo import Document
from shared.unit_of_work import Lookup, UnitOfWork


async def find_in_unit(uow: UnitOfWork, lookup: Lookup, value: Any) -> list[Document]:
    """Copies of the documents of ``lookup.collection`` whose ``lookup.field`` equals
    ``value``, as this unit of work sees them (its earlier writes included)."""
    stored = await uow.lookup(lookup).find(value)
    held: dict[Any, Document | None] = uow.documents(lookup.collection)._known
    found = [held.get(doc["_id"], doc) for doc in stored]
    stored_ids = {doc["_id"] for doc in stored}
    found += [doc for doc_id, doc in held.items() if doc_id not in stored_ids]
    return [
        copy.deepcopy(doc) for doc in found if doc is not None and doc.get(lookup.field) == value
    ]
