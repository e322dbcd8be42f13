"""An enforcement officer's certificate (行政执法证件) as the officer registry keeps it.

The inspection service owns the registry (``gov.enforcement.officer.*``) and publishes each
entry on ``inspection.events`` (``jiandu.inspection.officer.changed``); casereview keeps a copy
and judges case files against it. Both read an entry with :func:`certificate_from_record`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


class Certificate(BaseModel):
    """An officer's certificate as the registry knows it (dates are CST days)."""

    officer_id: str
    unit: str
    cert_no: str
    valid_from: dt.date
    valid_until: dt.date
    suspended_since: dt.date | None = None
    suspended_until: dt.date | None = None
    revoked_since: dt.date | None = None

    def valid_on(self, day: dt.date) -> bool:
        if not self.valid_from <= day <= self.valid_until:
            return False
        if self.revoked_since is not None and day >= self.revoked_since:
            return False
        if self.suspended_since is not None and day >= self.suspended_since:
            return self.suspended_until is not None and day > self.suspended_until
        return True

    def status_on(self, day: dt.date) -> str:
        if self.revoked_since is not None and day >= self.revoked_since:
            return "revoked"
        if self.suspended_since is not None and not self.valid_on(day):
            if day >= self.suspended_since and (
                self.suspended_until is None or day <= self.suspended_until
            ):
                return "suspended"
        if day > self.valid_until:
            return "expired"
        if day < self.valid_from:
            return "not_yet_valid"
        return "valid"


def certificate_from_record(record: Mapping[str, Any]) -> Certificate | None:
    """A registry entry (days as ISO strings, ``id`` or ``_id``) as a certificate; ``None``
    for an officer the registry knows of but who was never certified."""
    if not record.get("registered") or not record.get("cert_no"):
        return None

    def day(field: str) -> dt.date | None:
        value = record.get(field)
        return dt.date.fromisoformat(value) if value else None

    return Certificate(
        officer_id=str(record.get("_id") or record["id"]),
        unit=record["unit"],
        cert_no=record["cert_no"],
        valid_from=dt.date.fromisoformat(record["valid_from"]),
        valid_until=dt.date.fromisoformat(record["valid_until"]),
        suspended_since=day("suspended_since"),
        suspended_until=day("suspended_until"),
        revoked_since=day("revoked_since"),
    )
