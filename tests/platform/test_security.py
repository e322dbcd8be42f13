"""Security matrix over every route of every service, generated from their OpenAPI documents.

* anonymous → 401 on every route (``/healthz``, ``/readyz``, ``/metrics`` and the gateway's
  login and console files excepted);
* every route is classified below (a new route without a class fails the test): lists never
  return another district's or unit's rows, whatever filter is asked; one object of another
  district or unit answers 403/404; a command on it answers 403/404; a unit acting for another
  unit is refused;
* personal data (name, phone, ID number, address) is masked for roles that may not see it, and
  every unmasked read lands in the gateway's hash-chained audit log (who, what, when).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from services.casereview.main import build as build_casereview
from services.casereview.settings import CasereviewSettings
from services.gateway.domain.projections import add_to_page, new_feed_page
from services.gateway.main import build as build_gateway
from services.gateway.settings import GatewaySettings
from services.gateway.storage import FEED
from services.hotline.main import build as build_hotline
from services.hotline.settings import HotlineSettings
from services.notify.main import build as build_notify
from services.notify.settings import NotifySettings
from services.penalty.main import build as build_penalty
from services.penalty.settings import PenaltySettings
from shared.identity import Role
from shared.service import Service
from shared.settings import ServiceSettings
from tests.gateway.support import T0
from tests.helpers import api_client, bearer, eventually

pytestmark = pytest.mark.integration

HOME, AWAY = "310101", "310106"  # the callers' district, another district
HOME_UNIT, SIBLING_UNIT, AWAY_UNIT = "310101-cgzf", "310101-sthj", "310106-cgzf"
PII_SERVICES = {"hotline", "casereview", "notify"}  # penalty's answers carry no party names
OPEN = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
GATEWAY_OPEN = {
    ("POST", "/v1/auth/token"),  # the login itself
    ("GET", "/v1/open-data/monthly"),  # anonymous by design: aggregate counts, no personal data
}

# Personal data seeded into the in-scope objects: none of it may leave unmasked.
NAME, PHONE, ID_NO, ADDRESS = (
    "欧阳小明",
    "13812345678",
    "310101199001011234",
    "黄浦区南京东路100号3室",
)


@dataclass(frozen=True)
class Route:
    """How the matrix treats one route: ``kind`` is ``ref`` (reference data, no scope),
    ``list``, ``item`` (GET one object), ``act`` (a command on one object), ``create`` (a
    command naming its unit), ``report`` (aggregates); ``collection`` holds the objects."""

    kind: str
    collection: str | None = None
    unit_field: str = "unit"


CLASSES: dict[str, dict[tuple[str, str], Route]] = {
    "hotline": {
        ("GET", "/v1/complaints"): Route("list", "complaints"),
        ("GET", "/v1/complaints/{order_id}"): Route("item", "complaints"),
        **{
            ("POST", f"/v1/complaints/{{order_id}}/{verb}"): Route("act", "complaints")
            for verb in (
                "acknowledge",
                "return",
                "reroute",
                "extension",
                "extension/decision",
                "resolve",
            )
        },
        ("GET", "/v1/routing"): Route("list", "routing"),
        ("GET", "/v1/routing/matters"): Route("ref"),
        ("GET", "/v1/routing/preview"): Route("ref"),
        ("GET", "/v1/routing/{district}/{matter}"): Route("item", "routing"),
        ("PUT", "/v1/routing/{district}/{matter}"): Route("act", "routing"),
    },
    "casereview": {
        ("GET", "/v1/casereview/cases"): Route("list", "cases"),
        ("GET", "/v1/casereview/cases/{case_id}"): Route("item", "cases"),
        ("POST", "/v1/casereview/cases/{case_id}/self-review"): Route("act", "cases"),
        ("GET", "/v1/casereview/rubric"): Route("ref"),
        ("GET", "/v1/casereview/reviewers"): Route("ref"),
        ("POST", "/v1/casereview/campaigns"): Route("create", "campaigns"),
        ("GET", "/v1/casereview/campaigns"): Route("list", "campaigns", "units"),
        ("GET", "/v1/casereview/campaigns/{campaign_id}"): Route("item", "campaigns"),
        ("GET", "/v1/casereview/campaigns/{campaign_id}/population"): Route("item", "campaigns"),
        ("GET", "/v1/casereview/campaigns/{campaign_id}/verify"): Route("item", "campaigns"),
        ("GET", "/v1/casereview/reviews"): Route("list", "reviews"),
        ("GET", "/v1/casereview/reviews/{review_id}"): Route("item", "reviews"),
        ("POST", "/v1/casereview/reviews/{review_id}/preview"): Route("act", "reviews"),
        ("POST", "/v1/casereview/reviews/{review_id}/score"): Route("act", "reviews"),
        ("GET", "/v1/casereview/rectifications"): Route("list", "rectifications"),
        ("GET", "/v1/casereview/rectifications/{rect_id}"): Route("item", "rectifications"),
        ("POST", "/v1/casereview/rectifications/{rect_id}/answer"): Route("act", "rectifications"),
        ("POST", "/v1/casereview/rectifications/{rect_id}/close"): Route("act", "rectifications"),
        ("GET", "/v1/casereview/reports"): Route("report", "reviews"),
        ("GET", "/v1/casereview/reports.csv"): Route("report", "reviews"),
    },
    "penalty": {
        ("GET", "/v1/penalty/filings"): Route("list", "filings"),
        ("GET", "/v1/penalty/filings/{case_id}"): Route("item", "filings"),
        ("POST", "/v1/penalty/filings"): Route("create", "filings"),
        ("POST", "/v1/penalty/filings/{case_id}/classification"): Route("act", "filings"),
        ("POST", "/v1/penalty/filings/{case_id}/review"): Route("act", "filings"),
        ("GET", "/v1/penalty/flags"): Route("list", "flags"),
        ("GET", "/v1/penalty/anomalies"): Route("list", "anomalies"),
        ("GET", "/v1/penalty/letters"): Route("list", "letters"),
        ("GET", "/v1/penalty/letters/{letter_id}"): Route("item", "letters"),
        ("POST", "/v1/penalty/letters/{letter_id}/reply"): Route("act", "letters"),
        ("GET", "/v1/penalty/catalogue"): Route("ref"),
        ("GET", "/v1/penalty/catalogue/{provision_id}"): Route("ref"),
    },
    "notify": {
        ("GET", "/v1/units/{unit}/inbox"): Route("list", "notices", "recipient_unit"),
        ("GET", "/v1/units/{unit}"): Route("ref"),
        ("GET", "/v1/notices"): Route("list", "notices", "recipient_unit"),
        ("GET", "/v1/notices/{notice_id}"): Route("item", "notices", "recipient_unit"),
        ("POST", "/v1/notices/{notice_id}/acknowledge"): Route("act", "notices", "recipient_unit"),
        ("GET", "/v1/notices/{notice_id}/deliveries"): Route("item", "notices", "recipient_unit"),
        ("POST", "/v1/notices/{notice_id}/resend"): Route("act", "notices", "recipient_unit"),
        ("POST", "/v1/letters"): Route("create", "letters", "recipient_unit"),
        ("GET", "/v1/letters"): Route("list", "letters", "recipient_unit"),
        ("GET", "/v1/letters/{letter_id}"): Route("item", "letters", "recipient_unit"),
        ("POST", "/v1/letters/{letter_id}/reply"): Route("act", "letters", "recipient_unit"),
    },
}

BUILDERS: dict[str, tuple[Callable[..., Service], type[ServiceSettings]]] = {
    "hotline": (build_hotline, HotlineSettings),
    "casereview": (build_casereview, CasereviewSettings),
    "penalty": (build_penalty, PenaltySettings),
    "notify": (build_notify, NotifySettings),
}


def operations(app_openapi: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in app_openapi["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )


# ------------------------------------------------------------------ documents from schemas


def sample(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """A value valid for ``schema`` (an OpenAPI response schema), smallest that fits."""
    if "$ref" in schema:
        return sample(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, depth)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return sample(options[0], defs, depth) if options else None
    if "allOf" in schema:
        return sample(schema["allOf"][0], defs, depth)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 6:
            return {}
        props = schema.get("properties", {})
        return {k: sample(props[k], defs, depth + 1) for k in schema.get("required", [])}
    if kind == "array":
        if schema.get("prefixItems"):
            return [sample(s, defs, depth + 1) for s in schema["prefixItems"]]
        wanted = schema.get("minItems", 0)
        return [sample(schema.get("items", {}), defs, depth + 1) for _ in range(wanted)]
    if kind == "string":
        return {"date-time": "2025-03-03T01:00:00Z", "date": "2025-03-03"}.get(
            schema.get("format", ""), "x"
        )
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 0), schema.get("exclusiveMinimum", -1) + 1)
    if kind == "boolean":
        return True
    return None


ACTING_UNIT = {"district": f"{HOME}-sfj", "unit": HOME_UNIT, "reviewer": None}


def request_body(
    openapi: dict[str, Any], method: str, path: str, unit: str | None
) -> dict[str, Any]:
    """A valid body for the route (its required fields), naming ``unit`` where it has one."""
    op = openapi["paths"][path][method.lower()]
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "schema" not in content:
        return {}
    defs = openapi.get("components", {}).get("schemas", {})
    schema = content["schema"]
    body = sample(schema, defs)
    if not isinstance(body, dict):
        return {}
    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
    props = defs.get(ref, {}).get("properties", {})
    if unit is not None and "unit" in props:
        body["unit"] = unit
    return body


def response_schema(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    op = openapi["paths"][path][method.lower()]
    for code in ("200", "201"):
        content = op.get("responses", {}).get(code, {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema:
            return dict(schema)
    return None


def object_schemas(service: str, openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """collection → the richest response schema of its objects (item route, else list item)."""
    defs = openapi.get("components", {}).get("schemas", {})
    out: dict[str, dict[str, Any]] = {}
    for (method, path), route in CLASSES[service].items():
        if route.collection is None or route.kind not in ("item", "list") or method != "GET":
            continue
        schema = response_schema(openapi, method, path)
        if schema is None:
            continue
        if route.kind == "list":
            name = schema.get("$ref", "").rsplit("/", 1)[-1]
            items = defs.get(name, {}).get("properties", {}).get("items", {}).get("items")
            if items is None or route.collection in out:
                continue
            schema = items
        elif path.endswith(("/population", "/verify", "/deliveries")):
            continue
        out[route.collection] = schema
    return out


def make_doc(
    schema: dict[str, Any], defs: dict[str, Any], _id: str, district: str, unit: str, route: Route
) -> dict[str, Any]:
    doc: dict[str, Any] = sample(schema, defs)
    doc.pop("id", None)
    for key, value in doc.items():
        if value == "x":  # unique, for unique indexes (idempotency keys, ...)
            doc[key] = f"{key}-{_id}"
    doc.update(_id=_id, district=district, unit=unit, status=doc.get("status", "x"))
    doc[route.unit_field] = unit
    if route.collection == "campaigns":
        doc.update(districts=[district], units=[unit])
    if route.collection == "complaints":
        doc.update(
            complainant={"name": NAME, "phone": PHONE},
            address=ADDRESS,
            status="dispatched",
            received_at=T0,
            unit_level="district",
            matter_level="district",
        )
    if route.collection == "cases":
        doc["file"] = {"party": {"type": "individual", "name": NAME, "id": ID_NO}}
    if route.collection == "filings":
        doc.update(party_type="individual", party_name=NAME)
    if route.collection == "routing":
        doc.update(matter="M1", level="district", streets={})
    if route.collection == "notices":
        doc.update(context={"address": ADDRESS}, summary=f"工单（{ADDRESS}）应于期限前办结")
    if route.collection == "reviews":
        doc.update(status="scored", closed_on="2025-03-03", grade="不合格", score=10.0)
    return doc


# ------------------------------------------------------------------ fixtures


@contextlib.asynccontextmanager
async def running(name: str, settings_for: Callable[..., Any]) -> AsyncIterator[Service]:
    build, cls = BUILDERS[name]
    async with build(settings_for(cls, instance_id=f"{name}-sec")).running() as svc:
        yield svc


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


ROLES: dict[str, tuple[Role, dict[str, Any]]] = {
    "district": (Role.DISTRICT_SUPERVISOR, {"sub": "home-bureau", "district": HOME}),
    "unit": (Role.UNIT_OFFICER, {"sub": "home-officer", "unit": HOME_UNIT, "district": HOME}),
    "reviewer": (Role.REVIEWER, {"sub": "home-reviewer", "district": HOME}),
}


def leaks_in(route: Route, role: str, body: Any) -> list[Any]:
    """Rows of a list answer that lie outside the caller's scope."""
    items = body.get("items", []) if isinstance(body, dict) else []
    out = []
    for item in items:
        district = item.get("district", item.get("districts"))
        unit = item.get(route.unit_field, item.get("unit"))
        districts = district if isinstance(district, list) else [district]
        units = unit if isinstance(unit, list) else [unit]
        if district is not None and any(d != HOME for d in districts):
            out.append(item)
        elif role == "unit" and any(u != HOME_UNIT for u in units):
            out.append(item)
    return out


async def test_every_route_of_every_service_is_authenticated_and_scoped(
    settings_for: Callable[..., Any],
) -> None:
    checked = leaks = 0
    seen_in_scope = 0
    statuses: dict[int, int] = {}
    acting = 0
    unclassified: list[str] = []
    for name in BUILDERS:
        async with running(name, settings_for) as svc, api_client(svc, anonymous=True) as client:
            openapi = (await client.get("/openapi.json")).json()
            defs = openapi.get("components", {}).get("schemas", {})
            ops = [op for op in operations(openapi) if op not in OPEN]
            unclassified += [f"{name} {m} {p}" for m, p in ops if (m, p) not in CLASSES[name]]

            # -- anonymous and forged tokens: 401 everywhere
            for method, path in ops:
                for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                    r = await client.request(method, fill(path, {}), json={}, headers=headers)
                    checked += 1
                    if r.status_code != 401:
                        leaks += 1
                        print("LEAK anonymous", name, method, path, r.status_code)

            # -- seed: one object of another district, one of a sibling unit (same district)
            schemas = object_schemas(name, openapi)
            ids: dict[str, dict[str, str]] = {}
            for (_, _), route in CLASSES[name].items():
                coll = route.collection
                if coll is None or coll in ids or coll not in schemas:
                    continue
                away, sibling = f"{coll}-away", f"{coll}-sibling"
                if coll == "routing":
                    away, sibling = f"{AWAY}:M1", f"{HOME}:M1"
                await svc.db[coll].delete_many({"_id": {"$in": [away, sibling]}})
                await svc.db[coll].insert_many(
                    [
                        make_doc(schemas[coll], defs, away, AWAY, AWAY_UNIT, route),
                        make_doc(schemas[coll], defs, sibling, HOME, SIBLING_UNIT, route),
                    ]
                )
                ids[coll] = {"away": away, "sibling": sibling}

            for role, (kind, claims) in ROLES.items():
                headers = bearer(svc.settings, kind, **claims)
                for (method, path), route in CLASSES[name].items():
                    coll = route.collection
                    if route.kind == "list":
                        variants: list[dict[str, str]] = [{}, {"district": AWAY}]
                        variants.append({"unit": AWAY_UNIT})
                        path_values = {"unit": AWAY_UNIT}
                        for params in variants:
                            r = await client.get(
                                fill(path, path_values), params=params, headers=headers
                            )
                            checked += 1
                            if r.status_code == 200:
                                bad = leaks_in(route, role, r.json())
                                leaks += len(bad)
                                for item in bad:
                                    print("LEAK list", name, role, path, params, item.get("id"))
                            elif r.status_code not in (403, 404):
                                leaks += 1
                                print("LEAK list status", name, role, path, r.status_code)
                        if "{unit}" not in path:
                            r = await client.get(path, headers=headers)
                            if r.status_code == 200:
                                seen_in_scope += r.json().get("total", 0)
                    elif route.kind in ("item", "act") and coll in ids:
                        targets = [ids[coll]["away"]]
                        if role == "unit":
                            targets.append(ids[coll]["sibling"])
                        for target in targets:
                            values = {p: target for p in re.findall(r"\{(\w+)\}", path)}
                            if coll == "routing":
                                district, matter = target.split(":")
                                values = {"district": district, "matter": matter}
                            body = request_body(openapi, method, path, ACTING_UNIT[role])
                            r = await client.request(
                                method, fill(path, values), json=body, headers=headers
                            )
                            checked += 1
                            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                            if r.status_code not in (403, 404):
                                leaks += 1
                                print("LEAK object", name, role, method, path, r.status_code)
                                print(r.text[:300])
                    elif route.kind == "report":
                        r = await client.get(
                            path,
                            params={"period_from": "2025-01-01", "period_to": "2025-12-31"},
                            headers=headers,
                        )
                        checked += 1
                        if r.status_code == 200 and AWAY in r.text:
                            leaks += 1
                            print("LEAK report", name, role, path)

            # -- a unit acting for another unit: refused, whatever the object
            officer = bearer(svc.settings, Role.UNIT_OFFICER, unit=HOME_UNIT)
            for (method, path), route in CLASSES[name].items():
                if route.kind not in ("act", "create") or method != "POST":
                    continue
                coll = route.collection or ""
                target = ids.get(coll, {}).get("sibling", "x")
                values = {p: target for p in re.findall(r"\{(\w+)\}", path)}
                valid = request_body(openapi, method, path, SIBLING_UNIT)
                for field in ("unit", "by"):
                    if field not in valid:
                        continue
                    body = {**valid, field: SIBLING_UNIT}
                    r = await client.post(fill(path, values), json=body, headers=officer)
                    checked += 1
                    acting += 1
                    if r.status_code not in (403, 404):
                        leaks += 1
                        print("LEAK acting", name, method, path, body, r.status_code)

    print(f"security matrix: {checked} checks, {leaks} leaks, {seen_in_scope} in-scope rows")
    print(f"objects of other districts/units answered: {statuses}")
    assert unclassified == [], f"routes missing from the security matrix: {unclassified}"
    assert leaks == 0
    assert seen_in_scope > 0  # the callers do see their own district's rows
    assert acting >= 8  # every unit action was tried for another unit


async def test_gateway_routes_refuse_anonymous_callers(
    settings_for: Callable[..., Any],
) -> None:
    settings = settings_for(GatewaySettings)
    async with build_gateway(settings).running() as svc, api_client(svc, anonymous=True) as client:
        openapi = (await client.get("/openapi.json")).json()
        ops = [op for op in operations(openapi) if op not in OPEN | GATEWAY_OPEN]
        refused = 0
        for method, path in ops:
            r = await client.request(method, fill(path, {}), json={})
            refused += r.status_code == 401
            assert r.status_code == 401, (method, path, r.status_code)
    print(f"gateway: {refused} routes refuse anonymous callers")
    assert refused == len(ops) > 10


async def test_gateway_lists_and_feed_never_leak_another_district(
    settings_for: Callable[..., Any],
) -> None:
    """Every gateway list (from its OpenAPI: the GET routes answering ``items``) and the live
    feed, as a district and a unit caller, with and without filters naming another district."""
    settings = settings_for(GatewaySettings, stream_backlog=50)
    async with build_gateway(settings).running() as svc, api_client(svc, anonymous=True) as client:
        for coll in (
            "complaints",
            "cases",
            "filings",
            "notices",
            "inspections",
            "officers",
            "leads",
            "quarantine",
        ):
            await svc.db[coll].insert_many(
                [
                    {
                        "_id": f"{coll}-{where}",
                        "entity": coll.rstrip("s"),
                        "district": district,
                        "unit": unit,
                        "status": "open",
                        "event_time": T0,
                        "raised_at": T0,
                        "at": T0,
                        "snapshot": {},
                    }
                    for where, district, unit in (
                        ("away", AWAY, AWAY_UNIT),
                        ("sibling", HOME, SIBLING_UNIT),
                        ("home", HOME, HOME_UNIT),
                    )
                ]
            )
        page = new_feed_page("page-1")
        for i, (district, unit) in enumerate(
            [(AWAY, AWAY_UNIT), (HOME, HOME_UNIT), (AWAY, AWAY_UNIT)], start=1
        ):
            add_to_page(
                page,
                {
                    "_id": f"t-{i}",
                    "entity": "complaint",
                    "entity_id": f"c-{i}",
                    "seq": i,
                    "district": district,
                    "unit": unit,
                    "time": T0,
                    "verb": "routed",
                    "type": "jiandu.hotline.complaint.routed",
                },
            )
        await svc.db[FEED].insert_one(page)
        openapi = (await client.get("/openapi.json")).json()
        defs = openapi.get("components", {}).get("schemas", {})

        def is_page(path: str) -> bool:
            ref = (response_schema(openapi, "GET", path) or {}).get("$ref", "")
            return "items" in defs.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})

        lists = [p for m, p in operations(openapi) if m == "GET" and "{" not in p and is_page(p)]
        assert {
            "/v1/complaints",
            "/v1/cases",
            "/v1/filings",
            "/v1/notices",
            "/v1/inspections",
            "/v1/officers",
            "/v1/inspection-summary",
            "/v1/inspection-rates",
            "/v1/leads",
        } <= set(lists)
        leaks = seen = 0
        for role in ("district", "unit"):
            kind, claims = ROLES[role]
            headers = bearer(settings, kind, **claims)
            for path in lists:
                for params in ({}, {"district": AWAY}, {"unit": AWAY_UNIT}):
                    r = await client.get(path, params=params, headers=headers)
                    if r.status_code in (403, 422):
                        continue
                    assert r.status_code == 200, (path, r.text)
                    items = r.json()["items"]
                    seen += len(items)
                    leaks += len(leaks_in(Route("list", None), role, r.json()))
            feed = await client.get("/v1/stream", params={"max_events": 1}, headers=headers)
            streamed = [json.loads(x[6:]) for x in feed.text.splitlines() if x.startswith("data:")]
            assert [x["district"] for x in streamed] == [HOME]
    print(f"gateway lists and feed: {seen} rows seen in scope, {leaks} leaks")
    assert leaks == 0 and seen > 0


async def test_personal_data_is_masked_by_role_and_unmasked_reads_are_audited(
    settings_for: Callable[..., Any],
) -> None:
    gw_settings = settings_for(GatewaySettings, instance_id="gw-sec")
    async with build_gateway(gw_settings).running() as gw:
        for name in BUILDERS:
            async with (
                running(name, settings_for) as svc,
                api_client(svc, anonymous=True) as client,
            ):
                openapi = (await client.get("/openapi.json")).json()
                defs = openapi.get("components", {}).get("schemas", {})
                schemas = object_schemas(name, openapi)
                gets: list[str] = []
                for (method, path), route in CLASSES[name].items():
                    coll = route.collection
                    if method != "GET" or coll not in schemas or route.kind not in ("item", "list"):
                        continue
                    doc_id = f"{coll}-pii"
                    if coll == "routing" or path.endswith(("/population", "/verify")):
                        continue  # the routing catalogue and draw inputs hold no personal data
                    if not await svc.db[coll].find_one({"_id": doc_id}):
                        await svc.db[coll].insert_one(
                            make_doc(schemas[coll], defs, doc_id, HOME, HOME_UNIT, route)
                        )
                    values = {p: doc_id for p in re.findall(r"\{(\w+)\}", path)}
                    values["unit"] = HOME_UNIT
                    gets.append(fill(path, values))
                city = bearer(svc.settings, Role.CITY_SUPERVISOR)
                home = bearer(
                    svc.settings, Role.DISTRICT_SUPERVISOR, sub="pii-reader", district=HOME
                )
                revealed = 0
                for url in gets:
                    masked = await client.get(url, headers=city)
                    assert masked.status_code == 200, (url, masked.text)
                    for value in (NAME, PHONE, ID_NO, ADDRESS):
                        assert value not in masked.text, (name, url, value)
                    whole = await client.get(url, headers=home)
                    assert whole.status_code == 200, (url, whole.text)
                    if any(v in whole.text for v in (NAME, PHONE, ID_NO, ADDRESS)):
                        revealed += 1
                if name in PII_SERVICES:
                    assert revealed > 0, name  # the seeded personal data is really served

                async def audited(service: str = name, wanted: int = revealed) -> bool:
                    found = await gw.db["audit"].count_documents(
                        {"actor": "pii-reader", "details.service": service}
                    )
                    return found >= wanted

                await eventually(audited, timeout=30)
        records = await gw.db["audit"].find({"actor": "pii-reader"}).to_list()
        assert all(r["personal_data"] and r["at"] and r["resource"] for r in records)
        assert {r["details"]["service"] for r in records} == PII_SERVICES
        operator = bearer(gw_settings, Role.OPERATOR)
        async with api_client(gw, anonymous=True) as gclient:
            intact = (await gclient.get("/v1/audit/verify", headers=operator)).json()
            assert intact["ok"] is True, intact
            first = records[0]["_id"]
            await gw.db["audit"].update_one({"_id": first}, {"$set": {"actor": "nobody"}})
            broken = (await gclient.get("/v1/audit/verify", headers=operator)).json()
    assert broken["ok"] is False and broken["broken_at"] == first
    print(json.dumps({"audited_reads": len(records)}))
