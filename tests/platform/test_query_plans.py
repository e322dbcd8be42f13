"""Every query the read APIs issue is served by an index: ``explain()`` shows no collection scan.

The test does not list the queries by hand, which would drift from the code. It records every
``find``, ``count`` and ``aggregate`` command a service sends to MongoDB while its list
endpoints are called (each query parameter on its own, then all together, and on the gateway
as each role, whose scope adds its own filter), then asks the server to explain each one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pymongo import monitoring

from services.casereview.main import build as build_casereview
from services.casereview.settings import CasereviewSettings
from services.gateway.domain.access import Role
from services.gateway.main import build as build_gateway
from services.gateway.settings import GatewaySettings
from services.hotline.main import build as build_hotline
from services.hotline.settings import HotlineSettings
from services.inspection.main import build as build_inspection
from services.inspection.settings import InspectionSettings
from services.notify.main import build as build_notify
from services.notify.settings import NotifySettings
from services.penalty.main import build as build_penalty
from services.penalty.settings import PenaltySettings
from shared.service import Service
from tests.gateway.support import bearer
from tests.helpers import bearer as service_bearer

pytestmark = pytest.mark.integration

QUERY_COMMANDS = {"find": "filter", "count": "query", "aggregate": "pipeline"}
# Keys of a recorded command that belong to the session or the wire, not to the query.
SESSION_KEYS = {"lsid", "txnNumber", "autocommit", "startTransaction", "readConcern", "cursor"}
NOT_LIST_QUERIES = {
    "/healthz": "no MongoDB query",
    "/readyz": "ping only",
    "/metrics": "counters",
    "/v1/stream": "server-sent events, never ends; tails by seq (indexed) and is tested elsewhere",
    "/v1/audit/verify": "walks the whole hash chain in order on purpose (_id index)",
}
SAMPLES = {"district": "310101", "unit": "310101-cgzf", "matter": "cgzf-noise"}


@dataclass
class CommandLog(monitoring.CommandListener):
    """Query commands sent while ``recording`` is on (pymongo command monitoring)."""

    recording: bool = False
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    names: set[str] = field(default_factory=lambda: set(QUERY_COMMANDS))

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording and event.command_name in self.names:
            self.commands.append((event.database_name, copy.deepcopy(dict(event.command))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


LOG = CommandLog()
monitoring.register(LOG)  # clients created from now on report to LOG; it records only when asked


def sample(name: str, schema: dict[str, Any]) -> Any:
    """A plausible value for a query parameter, from its OpenAPI schema."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    schema = options[0] if options else schema
    if "enum" in schema:
        return schema["enum"][0]
    if "$ref" in schema:
        return None  # enums by reference: resolved by the caller
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return "true"
    if fmt == "date-time":
        return "2026-03-01T00:00:00Z"
    if fmt == "date":
        return "2026-03-01"
    return SAMPLES.get(name, "x")


def list_calls(app_schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every GET without path parameters: bare, each parameter alone, all parameters."""
    components = app_schema.get("components", {}).get("schemas", {})
    for path, ops in app_schema["paths"].items():
        if "get" not in ops or "{" in path or path in NOT_LIST_QUERIES:
            continue
        params: dict[str, Any] = {}
        for p in ops["get"].get("parameters", []):
            if p["in"] != "query":
                continue
            schema = p.get("schema", {})
            refs = [s["$ref"] for s in schema.get("anyOf", [schema]) if "$ref" in s]
            if refs:
                schema = components[refs[0].rsplit("/", 1)[1]]
            value = sample(p["name"], schema)
            if value is not None:
                params[p["name"]] = value
        yield path, {}
        for name, value in params.items():
            yield path, {name: value}
        if len(params) > 1:
            yield path, params


def plan_stages(node: Any) -> Iterator[str]:
    """Every ``stage`` in an explain output, through input stages and aggregation cursors."""
    if isinstance(node, dict):
        if isinstance(node.get("stage"), str):
            yield node["stage"]
        for key, value in node.items():
            if key != "rejectedPlans":
                yield from plan_stages(value)
    elif isinstance(node, list):
        for item in node:
            yield from plan_stages(item)


def first_match(query: dict[str, Any]) -> dict[str, Any]:
    """The query's filter with a top-level ``$and`` of plain conditions (scope ∧ filter) merged."""
    if "pipeline" in query:
        stages = query["pipeline"]
        filt = dict(stages[0]["$match"]) if stages and "$match" in stages[0] else {}
    else:
        filt = dict(query.get("filter") or query.get("query") or {})
    for part in filt.pop("$and", []):
        for key, value in part.items():
            if key in filt and filt[key] != value:
                return {**filt, "$and": []}  # contradictory: keep it whole
            filt[key] = value
    return filt


async def served_by_index_prefix(
    db: Any, collection: str, filt: dict[str, Any], sort: dict[str, Any] | None
) -> str | None:
    """The index that serves the filter the way MongoDB's planner would use it, if any.

    SecantusDB's planner only considers an index that covers every field of the filter;
    MongoDB also uses an index whose leading field is in the filter and applies the rest of
    the filter after FETCH. For such a filter, explain the part the index serves.
    """
    async for index in await db[collection].list_indexes():
        keys = list(index["key"])
        if keys[0] not in filt:
            continue
        part = {k: v for k, v in filt.items() if k in keys}
        find: dict[str, Any] = {"find": collection, "filter": part}
        if sort:
            find["sort"] = sort
        plan = await db.command({"explain": find, "verbosity": "queryPlanner"})
        stages = set(plan_stages(plan))
        if "COLLSCAN" not in stages and "IXSCAN" in stages:
            return str(index["name"])
    return None


async def collection_scans(svc: Service) -> tuple[int, list[str]]:
    """Explain every recorded command; the commands whose winning plan scans a collection."""
    scans: list[str] = []
    explained = 0
    for db_name, command in LOG.commands:
        query = {k: v for k, v in command.items() if not k.startswith("$")}
        query = {k: v for k, v in query.items() if k not in SESSION_KEYS}
        if "aggregate" in query:
            query["cursor"] = {}
        name = next(iter(query))
        collection = query[name]
        if name == "find" and collection in ("leases", "outbox", "timers"):
            continue  # background loops, not API queries
        if name == "count" and not query.get("query"):
            continue  # estimated_document_count: collection metadata, nothing scanned
        plan = await svc.client[db_name].command({"explain": query, "verbosity": "queryPlanner"})
        explained += 1
        if "COLLSCAN" not in set(plan_stages(plan)):
            continue
        filt = first_match(query)
        sort = query.get("sort")
        if not filt and sort == {"_id": 1}:
            continue  # the built-in _id index: MongoDB walks it, SecantusDB's planner sorts
        if not filt and name == "aggregate" and any("$group" in s for s in query["pipeline"]):
            continue  # a city-wide tally (overview) reads every entity by definition
        if filt and await served_by_index_prefix(svc.client[db_name], collection, filt, sort):
            continue
        fields = ",".join(sorted(k for k in filt if not k.startswith("$")))
        scans.append(f"{db_name.split('_', 1)[1]}.{collection} filter[{fields}] sort{sort or ''}")
    return explained, sorted(set(scans))


async def record_list_queries(
    svc: Service, headers: list[dict[str, str]]
) -> tuple[int, int, list[str]]:
    """Call every list endpoint as each caller; (calls, commands explained, collection scans)."""
    app = svc.http_app(manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    calls = 0
    LOG.commands.clear()
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        for path, params in list_calls(app.openapi()):
            for header in headers:
                LOG.recording = True
                try:
                    response = await client.get(path, params=params, headers=header)
                finally:
                    LOG.recording = False
                assert response.status_code < 500, (path, params, response.text)
                calls += 1
    explained, scans = await collection_scans(svc)
    LOG.commands.clear()
    return calls, explained, scans


SERVICES = [
    pytest.param(build_hotline, HotlineSettings, id="hotline"),
    pytest.param(build_casereview, CasereviewSettings, id="casereview"),
    pytest.param(build_penalty, PenaltySettings, id="penalty"),
    pytest.param(build_notify, NotifySettings, id="notify"),
    pytest.param(build_inspection, InspectionSettings, id="inspection"),
]


@pytest.mark.parametrize(("build", "settings_cls"), SERVICES)
async def test_every_list_query_of_a_service_uses_an_index(
    settings_for: Callable[..., Any], build: Callable[..., Service], settings_cls: type[Any]
) -> None:
    settings = settings_for(settings_cls)
    callers = [  # every list is scoped by the caller's token: each scope must use an index
        service_bearer(settings, Role.CITY_SUPERVISOR),
        service_bearer(settings, Role.DISTRICT_SUPERVISOR, district="310101"),
        service_bearer(settings, Role.UNIT_OFFICER, unit="310101-cgzf"),
    ]
    async with build(settings).running() as svc:
        calls, explained, scans = await record_list_queries(svc, callers)
    assert calls > 0 and explained > 0, "the list endpoints queried MongoDB"
    assert scans == [], "\n".join(scans)


async def test_every_gateway_read_query_uses_an_index_in_every_scope(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    settings = settings_for(GatewaySettings)
    callers = [
        bearer(settings, Role.CITY_SUPERVISOR),
        bearer(settings, Role.DISTRICT_SUPERVISOR, district="310101"),
        bearer(settings, Role.UNIT_OFFICER, district="310101", unit="310101-cgzf"),
        bearer(settings, Role.OPERATOR),
    ]
    async with build_gateway(settings).running() as svc:
        calls, explained, scans = await record_list_queries(svc, callers)
    assert calls > 0 and explained > 0, "the read API queried MongoDB"
    assert scans == [], "\n".join(scans)


def test_plan_walk_finds_a_collection_scan_below_the_top_stage() -> None:
    plan = {
        "queryPlanner": {
            "winningPlan": {"stage": "SORT", "inputStage": {"stage": "COLLSCAN"}},
            "rejectedPlans": [{"stage": "IXSCAN"}],
        },
        "at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    assert list(plan_stages(plan)) == ["SORT", "COLLSCAN"]


async def test_the_runtime_reads_index_ranges_that_stay_flat_as_collections_grow(
    settings_for: Callable[..., Any],
) -> None:
    """Issue #18: the due-timer read, the relay's unsent entries and the inbox look-up each read
    an index range bounded by what they return, not by what the collection holds: with
    5,000 sent entries, future timers and applied batches in place, each examines only the
    keys of its answer."""
    from shared.consumer import INBOX
    from shared.outbox import OUTBOX
    from shared.timers import TIMERS

    svc = build_hotline(settings_for(HotlineSettings))
    async with svc.running():
        assert svc.relay is not None
        await svc.relay.stop()  # keep the unsent entries unsent while the plans are read
        db, now, n = svc.db, datetime.now(UTC), 5_000
        far = datetime(2199, 1, 1, tzinfo=UTC)
        await db[OUTBOX].insert_many(
            [{"_id": f"sent-{i}", "sent_at": now, "seq": i} for i in range(n)]
            + [{"_id": f"unsent-{i}", "sent_at": None, "seq": n + i} for i in range(7)]
        )
        await db[TIMERS].insert_many(
            [{"_id": f"t-{i}", "status": "pending", "due": far, "next_at": far} for i in range(n)]
        )
        await db[INBOX].insert_many(
            [{"_id": f"b-{i}", "ids": [f"c:{i}-{j}" for j in range(50)]} for i in range(n // 50)]
        )
        plans = {
            "relay": db[OUTBOX].find({"sent_at": None}).sort("seq", 1).limit(500),
            "due": db[TIMERS]
            .find({"status": "pending", "next_at": {"$lte": now}})
            .sort("next_at", 1)
            .limit(100),
            "inbox": db[INBOX].find({"ids": {"$in": ["c:3-7", "c:9-1", "c:none"]}}),
        }
        stats = {
            name: (await cursor.explain()).get("executionStats", {})
            for name, cursor in plans.items()
        }
    assert stats["relay"]["totalKeysExamined"] == 7, stats["relay"]
    assert stats["due"]["totalKeysExamined"] == 0, stats["due"]
    assert stats["inbox"]["totalKeysExamined"] <= 3, stats["inbox"]
    assert all(s["totalDocsExamined"] <= 7 for s in stats.values()), stats


def recorded_filters(commands: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The filter of every recorded query or write (``findAndModify``'s ``query``, an
    update's ``q``) — what the server has to find the documents with."""
    filters: list[dict[str, Any]] = []
    for _, command in commands:
        for key in ("filter", "query"):
            if isinstance(command.get(key), dict):
                filters.append(command[key])
        for op in command.get("updates", []):
            filters.append(op["q"])
    return filters


def has_or(node: Any) -> bool:
    if isinstance(node, dict):
        return "$or" in node or any(has_or(v) for v in node.values())
    if isinstance(node, list):
        return any(has_or(v) for v in node)
    return False


async def test_the_background_loops_do_not_read_what_grows(
    settings_for: Callable[..., Any],
) -> None:
    """Issue #18, the bench with 100,000 documents in every collection: the timer wheel's look
    up of its nearest timer sorted every pending timer (0.5 s with 10,000 future deadlines on
    SecantusDB, which sorts a whole range in memory), and the lease, notify's due deliveries
    and hotline's earlier cases asked with an ``$or``, which SecantusDB answers by scanning
    the whole collection (0.1–0.3 s at 10,000), as it answers any ``findAndModify``. Now the
    nearest timer is looked for only before the wheel's cap (an index range with nothing in it
    here), and nothing asks an ``$or`` or sends a ``findAndModify``."""
    from services.hotline import storage as hotline_storage
    from services.notify import storage as notify_storage
    from shared.leases import LEASES, Lease
    from shared.timers import TIMERS

    svc = build_hotline(settings_for(HotlineSettings))
    async with svc.running():
        assert svc.timers is not None
        db, now, n = svc.db, datetime.now(UTC), 5_000
        far = datetime(2199, 1, 1, tzinfo=UTC)
        await db[TIMERS].insert_many(
            [{"_id": f"t-{i}", "status": "pending", "due": far, "next_at": far} for i in range(n)]
        )
        await db[LEASES].insert_many([{"_id": f"other-{i}", "until": far} for i in range(n)])
        LOG.commands.clear()
        LOG.recording, LOG.names = True, set(QUERY_COMMANDS) | {"findAndModify", "update"}
        try:
            await svc.timers.tick()
            await svc.timers._sleep_s()  # the nearest-timer look-up after a sweep
            lease = Lease(db, "test-lease", owner="a", seconds=30)
            assert await lease.acquire()  # taken (none yet)
            lease._renew_after = None
            assert await lease.acquire()  # renewed
            assert not await Lease(db, "test-lease", owner="b", seconds=30).acquire()
            await svc.run_in_uow(
                lambda uow: hotline_storage.case_times_for(uow, order_id="O-1", keys=["k1"])
            )
        finally:
            LOG.recording, LOG.names = False, set(QUERY_COMMANDS)
        commands = list(LOG.commands)
        LOG.commands.clear()
        timer_reads = [c for _, c in commands if c.get("find") == TIMERS]
        examined = []
        for command in timer_reads:
            query = {k: v for k, v in command.items() if k not in SESSION_KEYS}
            query = {k: v for k, v in query.items() if not k.startswith("$")}
            plan = await db.command({"explain": query, "verbosity": "executionStats"})
            examined.append(plan["executionStats"]["totalKeysExamined"])
    assert any("sort" in c for c in timer_reads), "the nearest-timer look-up was recorded"
    assert examined and max(examined) == 0, examined  # none of the 5,000 future timers
    filters = recorded_filters(commands)
    assert any(f.get("_id") == "test-lease" for f in filters), "the lease's writes were recorded"
    assert any("source_order_id" in f for f in filters), "the case look-up was recorded"
    assert not [f for f in filters if has_or(f)]
    assert not [c for _, c in commands if "findAndModify" in c]  # SecantusDB: a full read
    assert not has_or(notify_storage.claimable(now))
