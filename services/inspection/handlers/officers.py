"""执法人员资格管理: the officer registry kept from certification events (取得, 暂扣, 吊销);
each change re-judges the 持证率 of the unit and its district."""

from __future__ import annotations

from typing import Any

from services.inspection import storage
from services.inspection.handlers.findings import cst_day, officer_snapshot
from services.inspection.handlers.rates import RateJudge
from shared.contracts import OfficerCertified, OfficerRevoked, OfficerSuspended, parse_data
from shared.envelope import Envelope, EventRejected
from shared.mongo import Document
from shared.unit_of_work import UnitOfWork


class OfficerRegistry(RateJudge):
    """Keeps each officer's certificate and its status as of today."""

    async def on_certified(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, OfficerCertified)
        await self._officer_change(
            uow,
            event,
            data,
            "certified",
            {
                "name": data.name,
                "cert_no": data.cert_no,
                "valid_from": data.valid_from.isoformat(),
                "valid_until": data.valid_until.isoformat(),
                "suspended_since": None,
                "suspended_until": None,
                "revoked_since": None,
                "reason": None,
            },
        )

    async def on_suspended(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, OfficerSuspended)
        await self._officer_change(
            uow,
            event,
            data,
            "suspended",
            {
                "cert_no": data.cert_no,
                "suspended_since": data.since.isoformat(),
                "suspended_until": data.until.isoformat() if data.until else None,
                "reason": data.reason,
            },
        )

    async def on_revoked(self, event: Envelope, uow: UnitOfWork) -> None:
        data = parse_data(event, OfficerRevoked)
        await self._officer_change(
            uow,
            event,
            data,
            "revoked",
            {
                "cert_no": data.cert_no,
                "revoked_since": data.since.isoformat(),
                "reason": data.reason,
            },
        )

    async def _officer_change(
        self,
        uow: UnitOfWork,
        event: Envelope,
        data: OfficerCertified | OfficerSuspended | OfficerRevoked,
        action: str,
        fields: dict[str, Any],
    ) -> None:
        """One change of the registry entry; a suspension or revocation must name the
        certificate the officer holds. The same change again (new event id) changes nothing."""
        officer_id, unit, district = data.officer_id, data.unit, data.district
        existing = await storage.get(uow, storage.OFFICERS, officer_id)
        if action != "certified":
            if existing is None or not existing.get("registered"):
                raise EventRejected(f"officer {officer_id} holds no certificate to {action[:-2]}")
            if existing["cert_no"] != fields["cert_no"]:
                raise EventRejected(
                    f"officer {officer_id} holds certificate {existing['cert_no']}, "
                    f"not {fields['cert_no']}"
                )
        doc: Document = dict(existing or {"_id": officer_id})
        before = {k: doc.get(k) for k in (*fields, "unit", "district", "registered")}
        doc.update(fields, unit=unit, district=district, registered=True)
        if existing is not None and before == {k: doc.get(k) for k in before}:
            return  # the same change again (new event id): nothing changes
        certificate = storage.certificate_of(doc)
        assert certificate is not None
        doc["status"] = certificate.status_on(cst_day(uow.now()))
        doc["updated_at"] = uow.now()
        storage.put(uow, storage.OFFICERS, doc)
        await self._emit(
            uow,
            "officer",
            "changed",
            doc,
            {"at": uow.now(), "action": action, "event_id": event.id},
            body=officer_snapshot(doc),
        )
        await self._judge_certification(uow, unit, district)
        if existing is not None and existing.get("unit") not in (None, unit):
            await self._judge_certification(uow, existing["unit"], existing["district"])
