"""Session fixtures: the suite runs its own noida-db and SecantusDB on free ports.

Each test gets its own topic prefix and database names, so tests never see each other's
data and never collide with a running ``make run``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devtools.embedded import EmbeddedServers, free_port
from shared.kafka_admin import create_topics
from shared.settings import ServiceSettings
from tests.helpers import KafkaTap, Publisher, settings_on

S = TypeVar("S", bound=ServiceSettings)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServers]:
    data = Path(tmp_path_factory.mktemp("embedded"))
    embedded = EmbeddedServers(data, kafka_port=free_port(), mongo_port=free_port())
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def topics(servers: EmbeddedServers, prefix: str) -> list[str]:
    return await create_topics(servers.kafka_bootstrap, prefix)


@pytest.fixture
def settings_for(servers: EmbeddedServers, prefix: str, topics: list[str]) -> Callable[..., Any]:
    """``settings_for(HotlineSettings, instance_id="a", **overrides)`` on the test's prefix."""

    def make(cls: type[S], **overrides: Any) -> S:
        return settings_on(cls, servers, prefix, **overrides)

    return make


@pytest.fixture
async def tap(servers: EmbeddedServers) -> AsyncIterator[Callable[[str], Any]]:
    """``await tap(topic)`` → a started KafkaTap, stopped after the test."""
    taps: list[KafkaTap] = []

    async def open_tap(topic: str) -> KafkaTap:
        t = await KafkaTap(servers.kafka_bootstrap, topic).start()
        taps.append(t)
        return t

    yield open_tap
    for t in taps:
        await t.stop()


@pytest.fixture
async def publisher(servers: EmbeddedServers) -> AsyncIterator[Publisher]:
    pub = await Publisher(servers.kafka_bootstrap).start()
    yield pub
    await pub.stop()
