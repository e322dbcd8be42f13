"""``uow.lookup(...).find``: a look-up by a field, prefetched for the batch, that
sees what earlier events of the same unit of work added or changed, as a query after a flush
would, without a query per event (issue #18)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.service import Service
from shared.settings import ServiceSettings
from shared.unit_of_work import Lookup, UnitOfWork

pytestmark = pytest.mark.integration

BY_UNIT = Lookup("officers", "unit")
BY_TAG = Lookup("officers", "tags")


class LookupSettings(ServiceSettings):
    service_name: str = "lookup"


async def test_a_batch_look_up_sees_the_units_own_additions_and_changes(
    settings_for: Callable[..., Any],
) -> None:
    svc = Service(settings_for(LookupSettings))

    async def batch(uow: UnitOfWork) -> dict[str, Any]:
        await uow.lookup(BY_UNIT).load(["U-1", "U-2"])  # the consumer's prefetch
        reads = uow.reads
        officers = uow.documents("officers")
        officers.add({"_id": "D", "unit": "U-1"})  # an earlier event adds D to U-1 ...
        moved = await officers.get("B")  # ... and moves B from U-1 to U-2
        assert moved is not None and reads + 1 == uow.reads
        officers.put({**moved, "unit": "U-2", "tags": ["night"]})  # an array field matches
        await uow.lookup(BY_TAG).load(["night"])
        mine = await uow.lookup(BY_UNIT).find("U-1")
        mine[0]["unit"] = "changed"  # a copy: changing it changes nothing
        return {
            "tagged": sorted(d["_id"] for d in await uow.lookup(BY_TAG).find("night")),
            "U-1": sorted(d["_id"] for d in await uow.lookup(BY_UNIT).find("U-1")),
            "U-2": sorted(d["_id"] for d in await uow.lookup(BY_UNIT).find("U-2")),
            "queries": uow.reads - reads,
        }

    async with svc.running():
        await svc.db["officers"].insert_many(
            [
                {"_id": "A", "unit": "U-1"},
                {"_id": "B", "unit": "U-1"},
                {"_id": "C", "unit": "U-2", "tags": ["day", "night"]},
            ]
        )
        seen = await svc.run_in_uow(batch)
    assert seen["tagged"] == ["B", "C"]
    assert seen["U-1"] == ["A", "D"]
    assert seen["U-2"] == ["B", "C"]
    assert seen["queries"] == 2  # B by id, tags once; the unit look-ups came from the prefetch
