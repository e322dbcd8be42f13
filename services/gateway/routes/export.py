"""CSV exports of the caller's complaints, cases, filings and leads (no personal data)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from services.gateway import reads
from services.gateway.deps import READ_PERMISSIONS, GatewayDep, holding
from services.gateway.domain.access import Permission
from services.gateway.domain.export import EXPORT_COLUMNS
from shared.identity import Caller

router = APIRouter(tags=["read"])


def add_export_route(entity: str, permission: Permission) -> None:
    async def export(gw: GatewayDep, caller: Caller = Depends(holding(permission))) -> Response:
        return Response(
            await reads.export_csv(gw, caller, entity),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{entity}.csv"'},
        )

    router.add_api_route(
        f"/v1/export/{entity}.csv",
        export,
        methods=["GET"],
        response_class=Response,
        summary=f"CSV of the {entity} in the caller's scope (no personal data)",
    )


for exported in EXPORT_COLUMNS:
    add_export_route(exported, READ_PERMISSIONS[exported])
