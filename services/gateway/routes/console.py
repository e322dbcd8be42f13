"""The operations console (运行监控台): static files packaged with the service, no CDN."""

from __future__ import annotations

import os
from importlib import resources
from os import PathLike
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

CONSOLE_DIR = Path(str(resources.files("services.gateway").joinpath("console")))


class ConsoleFiles(StaticFiles):
    """The console's files, revalidated on every load so a new release shows at once."""

    def file_response(
        self,
        full_path: str | PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console/")


@router.get("/console")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/")


router.mount("/console", ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
