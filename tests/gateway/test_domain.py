"""Pure rules of the gateway: no servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi import HTTPException

from services.gateway.auth import decode_token, issue_token
from services.gateway.domain import audit
from services.gateway.domain.access import (
    Principal,
    Role,
    mask_personal_data,
    scope_filter,
    within,
)
from services.gateway.domain.credentials import key_id_of, new_api_key, sign, signature_ok
from services.gateway.domain.ingest import BodyRefused, parse_body
from services.gateway.domain.projections import ENTITY_BY_NAME, apply_event, unpack
from services.gateway.domain.ratelimit import RateLimiter, TokenBucket
from services.gateway.settings import GatewaySettings
from tests.gateway.support import T0, complaint_event, workorder

CE = "application/cloudevents+json"


def _chain(n: int) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for i in range(n):
        records.append(
            audit.chain(
                records[-1] if records else None,
                at=T0 + timedelta(seconds=i),
                actor=f"user{i}",
                role="district_supervisor",
                action="read",
                resource="complaints",
                resource_ids=[f"WO-{i}"],
                personal_data=True,
                details={"note": "查看投诉人信息"},
            )
        )
    return records


def test_audit_chain_verifies_and_pinpoints_tampering() -> None:
    records = _chain(5)
    assert audit.verify_chain(records).ok
    altered = [dict(r) for r in records]
    altered[2]["actor"] = "someone-else"
    report = audit.verify_chain(altered)
    assert (report.ok, report.broken_at) == (False, 3)
    rehashed = [dict(r) for r in altered]
    rehashed[2]["hash"] = audit.record_hash(rehashed[2])  # a forger re-hashes the record...
    assert audit.verify_chain(rehashed).broken_at == 4  # ...and the next link breaks
    assert audit.verify_chain(records[:2] + records[3:]).broken_at == 3  # deletion
    assert audit.verify_chain([records[1], records[0]]).broken_at == 1  # re-ordering


def test_scope_filter_narrows_never_widens() -> None:
    district = Principal(sub="a", role=Role.DISTRICT_SUPERVISOR, district="310106")
    unit = Principal(sub="b", role=Role.UNIT_OFFICER, unit="310106-cgzf")
    city = Principal(sub="c", role=Role.CITY_SUPERVISOR)
    assert scope_filter(district) == {"district": "310106"}
    assert scope_filter(unit) == {"unit": "310106-cgzf"}
    assert scope_filter(city) == {}
    assert within(scope_filter(district), {"district": "310101"}) == {
        "$and": [{"district": "310106"}, {"district": "310101"}]
    }
    with pytest.raises(ValueError, match="needs a district claim"):
        Principal(sub="d", role=Role.DISTRICT_SUPERVISOR)


def test_personal_data_is_masked_without_touching_the_original() -> None:
    snapshot = {"complainant": {"name": "欧阳小明", "phone": "13812345678"}, "address": "x"}
    masked = mask_personal_data(snapshot)
    assert masked["complainant"] == {"name": "欧***", "phone": "138****5678"}
    assert snapshot["complainant"]["phone"] == "13812345678"
    party = mask_personal_data(
        {"party": {"type": "individual", "name": "李四", "id": "310101199001011234"}}
    )
    assert party["party"]["name"] == "李*" and "1990" not in party["party"]["id"]
    business = {"party": {"type": "business", "name": "某某餐饮有限公司"}}
    assert mask_personal_data(business) == business


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert bucket.take(0.0) == 0 and bucket.take(0.0) == 0
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0


def test_api_keys_and_signatures() -> None:
    key_id, key = new_api_key()
    assert key_id_of(key) == key_id and key_id_of("Bearer x") is None
    body = b'{"id":"1"}'
    assert signature_ok("s", body, sign("s", body))
    assert not signature_ok("s", body + b" ", sign("s", body))


def test_ingest_refuses_inconsistent_keys_and_keeps_valid_events() -> None:
    good = workorder("WO-9")
    assert parse_body(json.dumps(good).encode(), CE, max_batch=10).events[0].id == good["id"]
    wrong_key = {**workorder("WO-9"), "partitionkey": "other"}
    wrong_district = workorder("WO-9")
    wrong_district["district"] = "310101"
    for bad in (wrong_key, wrong_district):
        parsed = parse_body(json.dumps(bad).encode(), CE, max_batch=10)
        assert [r.code for r in parsed.refused] == ["inconsistent"]
    no_id = workorder()
    del no_id["id"]  # the Envelope would invent one; CloudEvents requires it
    assert "id" in parse_body(json.dumps(no_id).encode(), CE, max_batch=10).refused[0].reason
    with pytest.raises(BodyRefused) as too_many:
        parse_body(
            json.dumps([good] * 3).encode(), "application/cloudevents-batch+json", max_batch=2
        )
    assert too_many.value.status == 413


def test_projection_keeps_the_newest_snapshot_and_accumulates_facts() -> None:
    kind = ENTITY_BY_NAME["complaint"]
    returned = unpack(kind, complaint_event("WO-1", "returned", status="returned", at=T0), None)
    later = unpack(
        kind,
        complaint_event("WO-1", "overdue", status="dispatched", at=T0 + timedelta(hours=1)),
        "ab" * 16,
    )
    doc = apply_event(apply_event(None, later), returned)  # delivered out of order
    assert doc["status"] == "dispatched" and doc["trace_id"] == "ab" * 16
    assert (doc["returns"], doc["overdue"], doc["events"]) == (1, True, 2)
    assert doc["flags"] == ["overdue", "returned"]


def test_an_inspection_projection_lifts_what_the_district_summary_counts() -> None:
    from tests.gateway.test_inspection_reads import inspection, inspection_event

    kind = ENTITY_BY_NAME["inspection"]
    snap = inspection("I-1", "310106-scjg", "E1", scanned=False, planned=False, joint="J1")
    recorded = apply_event(
        None, unpack(kind, inspection_event("inspection", "recorded", snap, 0), None)
    )
    assert (recorded["enterprise"], recorded["joint_id"]) == ("E1", "J1")
    assert (recorded["code_scanned"], recorded["planned"], recorded["uncertified"]) == (
        False,
        False,
        False,
    )
    assert recorded["at"] == datetime.fromisoformat(snap["at"])
    assert recorded["flags"] == ["unplanned_inspection", "code_not_shown"]
    repeated = unpack(kind, inspection_event("inspection", "repeated", snap, 1), None)
    assert apply_event(recorded, repeated)["flags"] == [
        "unplanned_inspection",
        "code_not_shown",
        "repeated",
    ]


def test_bad_tokens_are_401_not_500() -> None:
    settings = GatewaySettings()
    now = datetime.now(UTC)
    good = issue_token(settings, Principal(sub="x", role=Role.OPERATOR), now)
    assert decode_token(settings, good).role is Role.OPERATOR
    expired = issue_token(settings, Principal(sub="x", role=Role.OPERATOR), now - timedelta(days=2))
    forged = jwt.encode(
        {
            "sub": "x",
            "role": "operator",
            "iss": settings.jwt_issuer,
            "exp": int(now.timestamp()) + 60,
        },
        "another-secret-of-32-bytes-or-more!!",
        "HS256",
    )
    odd_role = jwt.encode(
        {"sub": "x", "role": "king", "iss": settings.jwt_issuer, "exp": int(now.timestamp()) + 60},
        settings.jwt_secret,
        "HS256",
    )
    for token in (expired, forged, odd_role, "not-a-jwt"):
        with pytest.raises(HTTPException) as exc:
            decode_token(settings, token)
        assert exc.value.status_code == 401


def test_address_limiter_forgets_the_least_recent_and_gives_back_tokens() -> None:
    limiter = RateLimiter(rate=0.001, burst=2, tracked=10)
    assert limiter.take("a", 0.0) == 0 and limiter.take("a", 0.0) == 0
    assert limiter.take("a", 0.0) > 0  # empty
    limiter.give_back("a")
    assert limiter.take("a", 0.0) == 0  # a request that authenticated did not count
    for i in range(50):
        limiter.take(f"flood-{i}", 0.0)
    assert len(limiter) == 10  # bounded memory under a flood from many addresses


# ------------------------------------------------------------------ export and open data (row 28)


def test_export_columns_are_an_allow_list_without_personal_data() -> None:
    """A complaint projection with a complainant and free text exports neither."""
    from services.gateway.domain.export import EXPORT_COLUMNS, to_csv

    doc = {
        "_id": "GD-1",
        "district": "310106",
        "unit": "310106-cgzf",
        "status": "resolved",
        "overdue": True,
        "snapshot": {
            "matter": "ZDJY",
            "kind": "complaint",
            "returns": 2,
            "leads": ["a", "b"],
            "complainant": {"name": "王小明", "phone": "13812345678"},
            "description": "我家住南京西路1000号3楼",
            "matter_name": "=HYPERLINK(1)",
        },
    }
    text = to_csv(EXPORT_COLUMNS["complaints"], [doc])
    assert text.startswith("\ufeffid,district,unit,")
    assert "13812345678" not in text and "王小明" not in text and "3楼" not in text
    header, row = (line.split(",") for line in text.lstrip("\ufeff").splitlines())
    values = dict(zip(header, row, strict=True))
    assert (values["overdue"], values["returns"], values["leads"]) == ("true", "2", "2")
    assert values["matter_name"] == "'=HYPERLINK(1)"  # no formula injection
    for entity, columns in EXPORT_COLUMNS.items():
        headers = {c.header for c in columns}
        assert not headers & {"complainant", "description", "party_name", "summary"}, entity


def test_open_data_rows_per_district_and_month() -> None:
    from services.gateway.domain.export import OPEN_DATA_FIGURES, month_of, open_data_rows

    assert month_of(datetime(2025, 3, 31, 17, 0, tzinfo=UTC)) == "2025-04"  # 01:00 CST
    assert month_of(datetime(2025, 3, 31, 15, 0)) == "2025-03"  # naive: UTC from MongoDB
    rows = open_data_rows(
        {"complaints": {("310106", "2025-03"): 3}, "filed_late": {("310101", "2025-04"): 1}},
        {"310106": "静安区"},
    )
    assert [(r["district"], r["month"]) for r in rows] == [
        ("310106", "2025-03"),
        ("310101", "2025-04"),
    ]
    assert rows[0]["name"] == "静安区" and rows[0]["complaints"] == 3
    assert rows[0]["filed_late"] == 0 and set(OPEN_DATA_FIGURES) <= set(rows[1])
