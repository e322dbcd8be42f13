"""Builders shared by the gateway tests: credentials, external and internal events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.gateway import storage
from services.gateway.auth import create_user, hash_secret, issue_token
from services.gateway.domain.access import Principal, Role
from services.gateway.domain.credentials import new_api_key
from services.gateway.settings import GatewaySettings
from shared.envelope import Envelope
from shared.service import Service

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


async def make_api_key(svc: Service, name: str = "12345-platform") -> tuple[str, str]:
    key_id, key = new_api_key()
    await storage.insert_api_key(
        svc.db, {"_id": key_id, "name": name, "hash": hash_secret(key), "created_at": T0}
    )
    return key_id, key


def bearer(settings: GatewaySettings, role: Role, **claims: Any) -> dict[str, str]:
    principal = Principal(sub=f"{role.value}-user", role=role, **claims)
    return {"Authorization": f"Bearer {issue_token(settings, principal, datetime.now(UTC))}"}


async def add_user(
    svc: Service,
    name: str,
    password: str,
    role: Role,
    district: str | None = None,
    unit: str | None = None,
) -> None:
    await create_user(svc.db, name, password, role, district, unit)


def workorder(order_id: str | None = None, district: str = "310106", **data: Any) -> dict[str, Any]:
    """A structured-mode ``gov.12345.workorder.created`` CloudEvent (JSON dict)."""
    order_id = order_id or f"WO-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "order_id": order_id,
        "channel": "phone",
        "received_at": "2025-03-03T09:00:00+08:00",
        "district": district,
        "address": "静安区南京西路1000号",
        "category": "cgzf-noise",
        "description": "夜间施工噪音扰民",
        "complainant": {"name": "王小明", "phone": "13812345678"},
    }
    body.update(data)
    return {
        "specversion": "1.0",
        "id": f"evt-{uuid.uuid4().hex}",
        "source": "/12345/shanghai",
        "type": "gov.12345.workorder.created",
        "time": "2025-03-03T01:00:00Z",
        "datacontenttype": "application/json",
        "district": district,
        "partitionkey": order_id,
        "subject": f"workorder/{order_id}",
        "data": body,
    }


def complaint_event(
    order_id: str,
    verb: str,
    *,
    district: str = "310106",
    unit: str = "310106-cgzf",
    status: str = "dispatched",
    at: datetime = T0,
    change: dict[str, Any] | None = None,
    **snapshot: Any,
) -> Envelope:
    """An internal ``jiandu.hotline.complaint.<verb>`` event as the hotline would emit it."""
    snap: dict[str, Any] = {
        "id": order_id,
        "district": district,
        "unit": unit,
        "status": status,
        "updated_at": at.isoformat(),
        "address": "南京西路1000号",
        "complainant": {"name": "王小明", "phone": "13812345678"},
    }
    snap.update(snapshot)
    return Envelope(
        type=f"jiandu.hotline.complaint.{verb}",
        source="/jiandu/hotline",
        subject=f"complaint/{order_id}",
        district=district,
        partitionkey=order_id,
        time=at,
        data={"complaint": snap, "change": change or {"by": "hotline", "at": at.isoformat()}},
    )
