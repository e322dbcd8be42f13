"""MongoDB plumbing: one AsyncMongoClient per service process, index creation at start."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
IndexPlan = Mapping[str, Sequence[IndexModel]]


def make_client(uri: str, app_name: str) -> AsyncMongoClient[Document]:
    """A client with UTC-aware datetimes; call from the event loop that will use it."""
    return AsyncMongoClient(uri, tz_aware=True, appname=app_name, serverSelectionTimeoutMS=10000)


async def ensure_indexes(db: AsyncDatabase[Document], plan: IndexPlan) -> None:
    for collection, indexes in plan.items():
        if indexes:
            await db[collection].create_indexes(list(indexes))


@asynccontextmanager
async def transaction(client: AsyncMongoClient[Document]) -> AsyncIterator[AsyncClientSession]:
    """State and outgoing events commit together or not at all."""
    async with client.start_session() as session, await session.start_transaction():
        yield session
