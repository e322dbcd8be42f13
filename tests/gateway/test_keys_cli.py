"""``jiandu keys`` against a platform's data folder, then a first event as the README shows it."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.gateway.keys import PLATFORM_FILE
from services.gateway.settings import GatewaySettings
from shared.cli import app
from tests.gateway.test_ingest_api import gateway

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_first_event() -> tuple[dict[str, str], bytes]:
    """The headers and body of the README's copy-paste ``curl`` (``$JIANDU_KEY`` left as is)."""
    text = README.read_text("utf-8")
    block = text.split("<!-- first-event -->", 1)[1].split("<!-- /first-event -->", 1)[0]
    command = block.split("```sh", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    words = shlex.split(command)
    assert words[:4] == ["curl", "-sS", "-X", "POST"], words
    headers: dict[str, str] = {}
    body = b""
    for flag, value in itertools.pairwise(words):
        if flag == "-H":
            name, _, val = value.partition(":")
            headers[name.strip()] = val.strip()
        elif flag == "-d":
            body = value.encode()
    return headers, body


async def jiandu(data_dir: Path, db: str, *args: str) -> str:
    """Run ``jiandu`` as a user would (its own event loop, so in a thread here)."""
    env = {"JIANDU_MONGO_DB": db, "JIANDU_MONGO_URI": None}  # the URI comes from the data folder
    result = await asyncio.to_thread(
        CliRunner().invoke, app, [*args, "--data-dir", str(data_dir)], env=env
    )
    assert result.exit_code == 0, result.output
    return result.output


def printed(output: str, label: str) -> str:
    match = re.search(rf"^{label}:\s+(\S+)", output, re.MULTILINE)
    assert match, output
    return match.group(1)


async def test_keys_create_then_the_readme_first_event_is_accepted(
    settings_for: Callable[..., GatewaySettings], tmp_path: Path
) -> None:
    settings = settings_for(GatewaySettings)
    (tmp_path / PLATFORM_FILE).write_text(
        json.dumps({"mongo_uri": settings.mongo_uri, "gateway_url": "http://127.0.0.1:18000"})
    )
    db = settings.database
    create = ("keys", "create", "--name", "12345", "--districts", "310106")
    created = await jiandu(tmp_path, db, *create)
    key = printed(created, "X-Api-Key")
    assert "http://127.0.0.1:18000/v1/events" in created  # the running platform's gateway
    headers, body = readme_first_event()
    headers = {k: v.replace("$JIANDU_KEY", key) for k, v in headers.items()}
    event = json.loads(body)
    async with gateway(settings) as (_, client):
        first = await client.post("/v1/events", content=body, headers=headers)
        assert first.status_code == 202, first.text
        assert first.json()["accepted"] == [event["id"]]

        # The key is limited to 310106: an event of 310101 is refused with the reason.
        other = json.loads(body)
        other["id"], other["district"], other["data"]["district"] = "evt-2", "310101", "310101"
        refused = await client.post("/v1/events", content=json.dumps(other), headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["refused"][0]["code"] == "out_of_scope"

        # rotate: a new key for the same name and districts, the old one refused from now on
        old_id = printed(created, "key id")
        rotated = await jiandu(tmp_path, db, "keys", "rotate", old_id)
        new_key, new_id = printed(rotated, "X-Api-Key"), printed(rotated, "key id")
        assert printed(rotated, "districts") == "310106"
        again = await client.post("/v1/events", content=body, headers=headers)
        assert again.status_code == 401
        headers["X-Api-Key"] = new_key
        fresh = await client.post("/v1/events", content=body, headers=headers)
        assert fresh.status_code == 202 and fresh.json()["duplicates"] == [event["id"]]

        listed = await jiandu(tmp_path, db, "keys", "list", "--all")
        assert re.search(rf"^{new_id}  12345  districts=310106 .* active$", listed, re.M)
        assert re.search(rf"^{old_id}  12345 .* revoked", listed, re.M)
        assert key not in listed and new_key not in listed  # secrets are never shown again

        await jiandu(tmp_path, db, "keys", "revoke", new_id)
        gone = await client.post("/v1/events", content=body, headers=headers)
        assert gone.status_code == 401
