"""The operations console in Debian's headless chromium, against a real uvicorn gateway."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from devtools.embedded import free_port
from services.gateway import queries
from services.gateway.domain.access import Role
from services.gateway.main import build
from services.gateway.settings import GatewaySettings
from shared.service import Service
from shared.topics import HOTLINE_EVENTS
from tests.gateway.support import T0, add_user, complaint_event
from tests.helpers import Publisher, eventually

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@asynccontextmanager
async def served(settings: GatewaySettings) -> AsyncIterator[tuple[Service, str]]:
    """The gateway as in production: uvicorn serving ``http_app()`` (lifespan starts it)."""
    service = build(settings)
    config = uvicorn.Config(
        service.http_app(),
        host="127.0.0.1",
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:

        async def up() -> bool:
            return server.started

        await eventually(up, timeout=30)
        yield service, f"http://127.0.0.1:{settings.http_port}"
    finally:
        server.should_exit = True
        await task


async def test_console_login_overview_charts_and_complaint_timeline(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    port = free_port()
    settings = settings_for(
        GatewaySettings, http_port=port, peers=f"gateway=http://127.0.0.1:{port}"
    )
    async with served(settings) as (svc, base):
        await add_user(svc, "city", "console-pass", Role.CITY_SUPERVISOR)
        steps = [
            ("WO-C1", "registered", "received"),
            ("WO-C1", "routed", "dispatched"),
            ("WO-C1", "returned", "returned"),
            ("WO-C1", "rerouted", "dispatched"),
            ("WO-C2", "registered", "received"),
        ]
        for i, (order, verb, status) in enumerate(steps):
            event = complaint_event(order, verb, status=status, at=T0 + timedelta(hours=i))
            await publisher.event(svc.topic(HOTLINE_EVENTS), event)

        async def seeded() -> bool:
            return await queries.feed_size(svc.db) == len(steps)

        await eventually(seeded)
        ARTIFACTS.mkdir(exist_ok=True)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(f"{base}/console/")
                await page.fill("#username", "city")
                await page.fill("#password", "console-pass")
                await page.click("#login-form button[type=submit]")
                for chart in ("leads", "complaints", "grades", "filings"):
                    await page.wait_for_selector(f"#chart-{chart} canvas", timeout=15000)
                plotted = await page.evaluate(
                    """() => {
                      const dom = document.getElementById('chart-complaints');
                      const o = echarts.getInstanceByDom(dom).getOption();
                      const names = o.xAxis[0].data;
                      return Object.fromEntries(names.map((n, i) => [n, o.series[0].data[i]]));
                    }"""
                )
                assert plotted["静安区"] == 2 and sum(plotted.values()) == 2
                assert await page.locator("#kpis .kpi").count() == 7
                await page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

                await page.click("nav a[data-view=complaints]")
                await page.click('tr[data-id="WO-C1"]', timeout=15000)
                await page.wait_for_selector("#timeline li", timeout=15000)
                items = await page.locator("#timeline li .verb").all_inner_texts()
                assert items == ["登记 registered", "派单 routed", "退单 returned", "改派 rerouted"]
                snapshot = await page.inner_text("#detail-snapshot")
                assert "138****5678" in snapshot and "13812345678" not in snapshot
                await page.screenshot(path=str(ARTIFACTS / "console-timeline.png"), full_page=True)

                await page.click("nav a[data-view=ops]")
                await page.wait_for_selector("#health-body tr td.ok", timeout=15000)
                assert errors == []
            finally:
                await browser.close()
    assert (ARTIFACTS / "console.png").stat().st_size > 10_000


async def test_console_inspections_page_shows_a_district_its_own_summary_and_rates(
    settings_for: Callable[..., GatewaySettings], publisher: Publisher
) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    from tests.gateway.test_inspection_reads import JINGAN, seed

    port = free_port()
    settings = settings_for(
        GatewaySettings, http_port=port, peers=f"gateway=http://127.0.0.1:{port}"
    )
    async with served(settings) as (svc, base):
        await add_user(svc, "jingan", "console-pass", Role.DISTRICT_SUPERVISOR, district=JINGAN)
        await seed(svc, publisher)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(f"{base}/console/")
                await page.fill("#username", "jingan")
                await page.fill("#password", "console-pass")
                await page.click("#login-form button[type=submit]")
                await page.wait_for_selector("#kpis .kpi", timeout=15000)
                await page.click("nav a[data-view=checks]")
                await page.wait_for_selector(f'#checks-body tr[data-district="{JINGAN}"]')
                assert await page.locator("#checks-body tr").count() == 1  # its district only
                cells = await page.locator("#checks-body tr td").all_inner_texts()
                assert cells[1:6] == ["4", "3", "75.0%", "1", "1"]
                assert cells[6].startswith("E1 2/2")
                rates = await page.locator("#rates-body tr").all_inner_texts()
                assert len(rates) == 2 and "50.0% (1)" in rates[0] and "持证率 ×1" in rates[1]
                await page.screenshot(path=str(ARTIFACTS / "console-inspections.png"))
                assert errors == []
            finally:
                await browser.close()
