"""The console's view of enterprise inspections (涉企行政检查): the inspection service's events
projected by the gateway and read back per district, scoped by role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gateway import queries
from services.gateway.domain.access import Role
from services.gateway.settings import GatewaySettings
from shared.envelope import Envelope
from shared.topics import INSPECTION_EVENTS
from tests.gateway.support import bearer
from tests.gateway.test_ingest_api import gateway
from tests.helpers import Publisher, eventually

pytestmark = pytest.mark.integration

JINGAN, HUANGPU = "310106", "310101"
MARKET, URBAN = "310106-scjg", "310106-cgzf"
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def inspection_event(entity: str, verb: str, snapshot: dict[str, Any], minute: int) -> Envelope:
    """A ``jiandu.inspection.<entity>.<verb>`` event as the inspection service emits it."""
    at = AT + timedelta(minutes=minute)
    return Envelope(
        type=f"jiandu.inspection.{entity}.{verb}",
        source="/jiandu/inspection",
        subject=f"{entity}/{snapshot['id']}",
        district=snapshot["district"],
        partitionkey=snapshot["id"],
        time=at,
        data={entity: snapshot, "change": {"at": at.isoformat()}},
    )


def inspection(
    iid: str,
    unit: str,
    enterprise: str,
    *,
    district: str = JINGAN,
    scanned: bool = True,
    planned: bool = True,
    joint: str | None = None,
    uncertified: tuple[str, ...] = (),
) -> dict[str, Any]:
    flags = [] if planned else ["unplanned_inspection"]
    flags += [] if scanned else ["code_not_shown"]
    flags += ["uncertified_officer"] if uncertified else []
    return {
        "id": iid,
        "district": district,
        "unit": unit,
        "enterprise": enterprise,
        "at": AT.isoformat(),
        "code_scanned": scanned,
        "planned": planned,
        "joint_id": joint,
        "uncertified_officers": list(uncertified),
        "flags": flags,
        "status": "flagged" if flags else "clean",
    }


def officer(oid: str, unit: str, status: str, district: str = JINGAN) -> dict[str, Any]:
    return {
        "id": oid,
        "unit": unit,
        "district": district,
        "registered": True,
        "status": status,
        "cert_no": f"C-{oid}",
    }


def review(rid: str, outcome: str) -> dict[str, Any]:
    return {
        "id": rid,
        "case_id": f"CASE-{rid}",
        "unit": MARKET,
        "district": JINGAN,
        "outcome": outcome,
        "corrected": outcome != "upheld",
        "status": outcome,
    }


EVENTS = [
    ("inspection", "recorded", inspection("I-1", MARKET, "E1")),
    (
        "inspection",
        "recorded",
        inspection("I-2", URBAN, "E1", scanned=False, planned=False, joint="J1"),
    ),
    ("inspection", "recorded", inspection("I-3", MARKET, "E1", joint="J1", uncertified=("O-2",))),
    ("inspection", "repeated", inspection("I-3", MARKET, "E1", joint="J1", uncertified=("O-2",))),
    ("inspection", "recorded", inspection("I-4", MARKET, "E2")),
    ("inspection", "recorded", inspection("I-9", "310101-scjg", "E3", district=HUANGPU)),
    ("officer", "changed", officer("O-1", MARKET, "valid")),
    ("officer", "changed", officer("O-2", MARKET, "suspended")),
    ("officer", "changed", officer("O-9", "310101-scjg", "valid", district=HUANGPU)),
    ("review", "recorded", review("R-1", "revoked")),
    ("review", "recorded", review("R-2", "upheld")),
    (
        "rate",
        "crossed",
        {
            "id": f"certification:unit:{MARKET}",
            "metric": "certification",
            "scope": "unit",
            "key": MARKET,
            "district": JINGAN,
            "unit": MARKET,
            "crossings": 1,
            "breached": True,
            "status": "breached",
        },
    ),
]


async def seed(svc: Any, publisher: Publisher) -> None:
    topic = svc.topic(INSPECTION_EVENTS)
    for minute, (entity, verb, snapshot) in enumerate(EVENTS):
        await publisher.event(topic, inspection_event(entity, verb, snapshot, minute))

    async def all_projected() -> bool:
        return await queries.feed_size(svc.db) == len(EVENTS)

    await eventually(all_projected)


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(item["id"] for item in response.json()["items"])


async def test_inspections_officers_and_rates_are_read_back_scoped_by_role(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    settings = settings_for(GatewaySettings)
    async with gateway(settings) as (svc, client):
        await seed(svc, publisher)
        jingan = bearer(settings, Role.DISTRICT_SUPERVISOR, district=JINGAN)
        urban = bearer(settings, Role.UNIT_OFFICER, district=JINGAN, unit=URBAN)
        city = bearer(settings, Role.CITY_SUPERVISOR)

        # lists and items: a district supervisor sees its district only
        assert ids(await client.get("/v1/inspections", headers=jingan)) == [
            "I-1",
            "I-2",
            "I-3",
            "I-4",
        ]
        away = await client.get("/v1/inspections", params={"district": HUANGPU}, headers=jingan)
        assert ids(away) == []
        assert (await client.get("/v1/inspections/I-9", headers=jingan)).status_code == 404
        assert ids(await client.get("/v1/officers", headers=jingan)) == ["O-1", "O-2"]
        assert ids(await client.get("/v1/inspections", headers=urban)) == ["I-2"]
        assert len(ids(await client.get("/v1/inspections", headers=city))) == 5
        # the service's findings and the repeat verb are flags to filter on
        unshown = await client.get(
            "/v1/inspections", params={"flag": "code_not_shown"}, headers=jingan
        )
        assert ids(unshown) == ["I-2"]
        repeated = await client.get("/v1/inspections", params={"flag": "repeated"}, headers=jingan)
        assert ids(repeated) == ["I-3"]
        detail = (await client.get("/v1/inspections/I-3", headers=jingan)).json()
        assert [t["verb"] for t in detail["timeline"]] == ["recorded", "repeated"]

        # the district summary: 亮码率, 未备案, 无证执法 and frequency per enterprise
        summary = (await client.get("/v1/inspection-summary", headers=jingan)).json()["items"]
        assert [row["district"] for row in summary] == [JINGAN]
        row = summary[0]
        assert (row["inspections"], row["code_scanned"], row["code_rate"]) == (4, 3, 0.75)
        assert (row["unplanned"], row["uncertified"]) == (1, 1)
        assert row["top_enterprises"][0] == {  # the joint inspection J1 counts once
            "enterprise": "E1",
            "visits": 2,
            "inspections": 3,
            "units": 2,
        }
        assert [e["enterprise"] for e in row["top_enterprises"]] == ["E1", "E2"]
        citywide = (await client.get("/v1/inspection-summary", headers=city)).json()["items"]
        assert {r["district"]: r["inspections"] for r in citywide} == {HUANGPU: 1, JINGAN: 4}
        own = (await client.get("/v1/inspection-summary", headers=urban)).json()["items"]
        assert [(r["inspections"], r["code_rate"], r["unplanned"]) for r in own] == [(1, 0.0, 1)]
        window = await client.get("/v1/inspection-summary", params={"days": 1}, headers=city)
        assert window.json()["items"] == []  # every inspection is two days old

        # 持证率 and 被纠错率 per district and unit, with the service's crossings
        rates = (await client.get("/v1/inspection-rates", headers=jingan)).json()["items"]
        assert [(r["scope"], r["unit"]) for r in rates] == [("district", None), ("unit", MARKET)]
        district_rate, unit_rate = rates
        assert (district_rate["officers"], district_rate["certification_rate"]) == (2, 0.5)
        assert (district_rate["reviews"], district_rate["correction_rate"]) == (2, 0.5)
        assert district_rate["crossings"] == {}
        assert unit_rate["crossings"] == {"certification": 1}
        city_rates = (await client.get("/v1/inspection-rates", headers=city)).json()["items"]
        assert {r["district"] for r in city_rates} == {HUANGPU, JINGAN}
        assert (await client.get("/v1/inspection-rates", headers=urban)).json()["items"] == []

        reviewer = bearer(settings, Role.REVIEWER)
        for path in ("/v1/inspections", "/v1/inspection-summary", "/v1/inspection-rates"):
            assert (await client.get(path, headers=reviewer)).status_code == 403
            assert (await client.get(path)).status_code == 401
