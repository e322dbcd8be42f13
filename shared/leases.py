"""Leases in MongoDB: which replica may run a singleton job (outbox relay) right now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document

LEASES = "leases"


class Lease:
    """Wall-clock lease: held by ``owner`` until it expires or is renewed."""

    def __init__(self, db: AsyncDatabase[Document], name: str, owner: str, seconds: float) -> None:
        self._coll = db[LEASES]
        self.name = name
        self.owner = owner
        self.seconds = seconds
        self._renew_after: datetime | None = None
        self._ask_after: datetime | None = None

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another live owner holds it.

        Renewed only once half of it has run: a busy relay asks MongoDB every
        ``seconds / 2``, not on every pass. Refused, it asks again only after ``seconds / 8``
        (a replica that does not hold the lease wakes on every commit of its own: each
        asked with a write that failed), so it takes over a dead holder's lease at most
        that late.
        """
        now = datetime.now(UTC)
        if self._renew_after is not None and now < self._renew_after:
            return True
        if self._ask_after is not None and now < self._ask_after:
            return False
        take = {"$set": {"owner": self.owner, "until": now + timedelta(seconds=self.seconds)}}
        # Renew (ours) or take over (ran out, or none yet): ``update_one`` by ``_id``, not a
        # ``findAndModify`` with an ``$or``: SecantusDB reads the whole collection for either.
        renewed = await self._coll.update_one({"_id": self.name, "owner": self.owner}, take)
        held = renewed.matched_count == 1
        if not held:
            try:
                taken = await self._coll.update_one(
                    {"_id": self.name, "until": {"$lte": now}}, take, upsert=True
                )
                held = taken.matched_count == 1 or taken.upserted_id is not None
            except DuplicateKeyError:  # held by a live owner (or taken meanwhile)
                held = False
        self._renew_after = now + timedelta(seconds=self.seconds / 2) if held else None
        self._ask_after = None if held else now + timedelta(seconds=self.seconds / 8)
        return held

    async def release(self) -> None:
        self._renew_after = None
        self._ask_after = None
        await self._coll.update_one(
            {"_id": self.name, "owner": self.owner},
            {"$set": {"until": datetime.fromtimestamp(0, UTC)}},
        )
