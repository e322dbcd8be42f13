"""shared.identity as pure functions: tokens, acting unit, masking of responses, logs, files."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi import HTTPException

from services.gateway.handlers import dead_letter_doc
from shared.identity import (
    Caller,
    IdentitySettings,
    Principal,
    Role,
    acting_person,
    acting_unit,
    caller_of,
    decode_token,
    issue_token,
    mask_text,
    mask_tree,
)
from shared.settings import ServiceSettings
from shared.telemetry import mask_personal_data


def caller(role: Role, **claims: str) -> Caller:
    return caller_of(IdentitySettings(), Principal(sub="u", role=role, **claims))


def test_tokens_need_signature_expiry_issuer_and_audience() -> None:
    now = datetime.now(UTC)  # tokens issued now: the test may run long after import
    settings = IdentitySettings()
    officer = Principal(sub="o", role=Role.UNIT_OFFICER, district="310101", unit="310101-cgzf")
    assert decode_token(settings, issue_token(settings, officer, now, 60)) == officer
    other_audience = issue_token(settings, officer, now, 60, audience="someone-else")
    expired = issue_token(settings, officer, now - timedelta(hours=2), 60)
    no_audience = jwt.encode(
        {"sub": "o", "role": "operator", "iss": settings.jwt_issuer, "exp": now + timedelta(1)},
        settings.jwt_secret,
        "HS256",
    )
    stranger = IdentitySettings(jwt_secret="another-secret-of-32-bytes-or-more!!")
    forged = issue_token(stranger, officer, now, 60)
    for token in (other_audience, expired, no_audience, forged):
        with pytest.raises(HTTPException) as refused:
            decode_token(settings, token)
        assert refused.value.status_code == 401


def test_secrets_come_from_files_and_the_dev_secret_stays_on_loopback(tmp_path: Path) -> None:
    secret = tmp_path / "jwt"
    secret.write_text("s" * 40 + "\n", encoding="utf-8")
    assert IdentitySettings(jwt_secret_file=str(secret)).jwt_secret == "s" * 40
    assert ServiceSettings(http_host="0.0.0.0", jwt_secret_file=str(secret)).jwt_secret
    with pytest.raises(ValueError, match="real token secret"):
        ServiceSettings(http_host="0.0.0.0")
    password = tmp_path / "mongo"
    password.write_text("p@ss\n", encoding="utf-8")
    settings = ServiceSettings(
        mongo_uri="mongodb://mongo1:27017/?authSource=admin",
        mongo_username="jiandu_hotline",
        mongo_password_file=str(password),
    )
    assert settings.mongo_uri == "mongodb://jiandu_hotline:p%40ss@mongo1:27017/?authSource=admin"


def test_unit_actions_act_as_the_token_unit() -> None:
    officer = caller(Role.UNIT_OFFICER, district="310101", unit="310101-cgzf")
    assert acting_unit(officer, None) == acting_unit(officer, "310101-cgzf") == "310101-cgzf"
    bureau = caller(Role.DISTRICT_SUPERVISOR, district="310101")
    assert acting_unit(bureau, None) == "310101-sfj"
    assert acting_unit(caller(Role.CITY_SUPERVISOR), None) == "310000-sfj"
    for who, named in ((officer, "310101-sthj"), (bureau, "310106-sfj")):
        with pytest.raises(HTTPException) as refused:
            acting_unit(who, named)
        assert refused.value.status_code == 403
    with pytest.raises(HTTPException) as refused:
        acting_unit(caller(Role.OPERATOR), None)  # operators do not act for units
    assert refused.value.status_code == 403
    assert acting_person(officer, None) == acting_person(officer, "u") == "u"
    with pytest.raises(HTTPException) as refused:
        acting_person(officer, "someone-else")  # the body cannot name another officer
    assert refused.value.status_code == 403


def test_every_personal_data_field_is_masked_and_quotes_of_it_too() -> None:
    doc = {
        "complainant": {"name": "欧阳小明", "phone": "13812345678"},
        "address": "黄浦区南京东路100号3室",
        "file": {"party": {"type": "individual", "name": "李四", "id": "310101199001011234"}},
        "party_type": "individual",
        "party_name": "王五",
        "contact": {"id_number": "310101199001011234"},
        "summary": "工单（黄浦区南京东路100号3室）来电人 欧阳小明",
        "business": {"party": {"type": "business", "name": "某某餐饮有限公司"}},
    }
    masked, found = mask_tree(doc)
    text = json.dumps(masked, ensure_ascii=False)
    assert found
    for value in ("欧阳小明", "13812345678", "黄浦区南京东路100号3室", "李四", "王五", "1990"):
        assert value not in text, value
    assert masked["business"] == doc["business"]  # a company is not personal data
    assert mask_tree({"status": "ok"}) == ({"status": "ok"}, False)


def test_logs_and_dead_letters_carry_no_personal_data() -> None:
    event = {"message": "refused 13812345678", "doc": {"complainant": {"name": "王小明"}}}
    logged = mask_personal_data(None, "info", event)
    assert "13812345678" not in json.dumps(logged, ensure_ascii=False)
    assert "王小明" not in json.dumps(logged, ensure_ascii=False)
    assert "310101199001011234" not in mask_text("身份证 310101199001011234")

    class Record:
        topic, partition, offset, timestamp, key = "x.dlt", 0, 7, 0, None
        headers: tuple[tuple[str, bytes], ...] = ()
        value = json.dumps({"complainant": {"phone": "13812345678"}}).encode()

    doc = dead_letter_doc(Record())  # type: ignore[arg-type]
    assert "13812345678" not in doc["value_text"]
    assert b"13812345678" in base64.b64decode(doc["value_b64"])  # raw bytes kept for replay
