"""The HTTP surface every service shares: refusals stay 4xx whatever the client sends."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from pydantic import BaseModel

from shared.service import Service
from shared.settings import ServiceSettings


class Thing(BaseModel):
    name: str
    size: int


def service() -> Service:
    svc = Service(ServiceSettings(service_name="http-test"))

    def routes(_: Service) -> APIRouter:
        router = APIRouter()

        @router.post("/things")
        async def make(thing: Thing) -> Thing:
            return thing

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
