"""The committed AsyncAPI documents (docs/asyncapi/) are what the code generates, and every
event type has a payload schema (no FastStream ``EmptyPayload`` left)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devtools.asyncapi import SERVICE_NAMES, documents, platform_events

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return documents()


def test_committed_documents_are_not_stale(generated: dict[str, str]) -> None:
    committed = {p.name: p.read_text("utf-8") for p in sorted(DOCS.glob("*.yaml"))}
    assert sorted(committed) == sorted(f"{n}.yaml" for n in SERVICE_NAMES)
    stale = [name for name, text in generated.items() if committed.get(name) != text]
    assert not stale, f"docs/asyncapi is stale for {stale}: run `make asyncapi` and commit"


def test_every_event_type_has_a_payload_schema(generated: dict[str, str]) -> None:
    described: dict[str, dict[str, object]] = {}
    for text in generated.values():
        doc = yaml.safe_load(text)
        schemas = doc["components"]["schemas"]
        assert "EmptyPayload" not in schemas
        for name, message in doc["components"]["messages"].items():
            ref = message["payload"]["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("properties"), name
            assert message["headers"]["properties"]["ce_type"] == {"const": name}
            described[name] = schemas[ref]
    every = {e.type for e in platform_events()}
    assert every <= set(described)
    decided = described["gov.enforcement.penalty.decided"]["properties"]
    assert {"goods_value", "illegal_gains", "measures"} <= set(decided)  # type: ignore[operator]
