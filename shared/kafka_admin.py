"""Topic creation: every platform topic with its partitions (the ``topics`` job, the runner)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.topics import topic_plan


async def create_topics(
    bootstrap: str, prefix: str = "", replication: int = 1, **client_options: Any
) -> list[str]:
    """Create every platform topic (and its DLT) with its partitions; existing ones are kept.
    ``client_options``: SASL settings (``PlatformSettings.kafka_client_options``)."""
    plan = topic_plan(prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, p, replication) for n, p in plan.items() if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        for _ in range(100):
            if set(plan) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    return sorted(plan)
