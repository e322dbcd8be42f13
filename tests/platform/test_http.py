"""The HTTP surface every service shares: refusals stay 4xx whatever the client sends."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel

from shared.clock import Instant
from shared.service import Service
from shared.settings import ServiceSettings


class Thing(BaseModel):
    name: str
    size: int
    made_at: Instant | None = None


def service() -> Service:
    svc = Service(ServiceSettings(service_name="http-test"))

    def routes(_: Service) -> APIRouter:
        router = APIRouter()

        @router.post("/things")
        async def make(thing: Thing) -> Thing:
            return thing

        @router.get("/things")
        async def since(since: Instant | None = None) -> dict[str, str | None]:
            return {"since": since.isoformat() if since else None}

        return router

    svc.routes(routes)
    return svc


async def post(body: str) -> httpx.Response:
    app = service().http_app(manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.post(
            "/things", content=body, headers={"content-type": "application/json"}
        )


async def test_invalid_body_echoing_a_lone_surrogate_is_a_422_not_a_500() -> None:
    response = await post('{"name": "\\udb35", "size": "x", "k\\u0000": 1}')  # found by fuzzing
    assert response.status_code == 422
    fields = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert ("body", "size") in fields


async def test_chinese_text_stays_readable_in_responses() -> None:
    response = await post('{"name": "城管执法局", "size": 3}')
    assert response.status_code == 200
    assert "城管执法局".encode() in response.content


async def test_times_out_of_range_are_422_in_bodies_and_queries() -> None:
    far = "0001-01-01T00:00:01+00:02"  # found by fuzzing: overflowed on conversion to UTC
    assert (await post(f'{{"name": "x", "size": 1, "made_at": "{far}"}}')).status_code == 422
    app = service().http_app(manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        assert (await client.get("/things", params={"since": far})).status_code == 422
        ok = await client.get("/things", params={"since": "2025-03-03T09:00:00+08:00"})
        assert ok.status_code == 200 and ok.json()["since"].startswith("2025-03-03T09:00")


async def test_a_scrape_answers_with_the_last_gauges_when_the_refresh_is_slow(
    settings_for: Any,
) -> None:
    """``/metrics`` must answer while MongoDB is busy: a refresh that takes longer than
    ``metrics_refresh_timeout_s`` is given up and the gauges keep their last values."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from shared.http import RuntimeGauges
    from shared.mongo import make_client

    settings = settings_for(ServiceSettings)
    client = make_client(settings.mongo_uri, "gauges-check")
    gauges = RuntimeGauges(CollectorRegistry(), refresh_timeout_s=0.2)
    never = asyncio.Event()

    async def three() -> int:
        return 3

    async def stuck() -> int:
        await never.wait()
        return 4

    try:
        db = client[settings.database]
        assert b"jiandu_timers_due 3.0" in await gauges.text(db, three)
        answered = await asyncio.wait_for(gauges.text(db, stuck), timeout=10)
    finally:
        await client.close()
    assert b"jiandu_timers_due 3.0" in answered
