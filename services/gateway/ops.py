"""Operations: every peer's readiness, the consumer lag of every group, dead-letter replay."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from services.gateway import queries, storage
from services.gateway.context import GatewayService
from services.gateway.settings import GatewaySettings
from shared.api import Conflict, NotFound
from shared.identity import Caller
from shared.mongo import Document


async def peer_health(settings: GatewaySettings) -> list[dict[str, Any]]:
    """GET ``/readyz`` of every peer in ``JIANDU_PEERS`` concurrently."""
    peers = settings.peer_map()

    async def probe(client: httpx.AsyncClient, name: str, url: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            response = await client.get(f"{url}/readyz")
            try:
                checks = response.json()
            except ValueError:
                checks = {"body": response.text[:200]}
            return {
                "service": name,
                "url": url,
                "ok": response.status_code == 200,
                "status": response.status_code,
                "ms": round((time.perf_counter() - t0) * 1000, 1),
                "checks": checks,
            }
        except httpx.HTTPError as exc:
            return {
                "service": name,
                "url": url,
                "ok": False,
                "status": None,
                "ms": round((time.perf_counter() - t0) * 1000, 1),
                "error": f"{type(exc).__name__}: {exc}",
            }

    async with httpx.AsyncClient(timeout=settings.peer_timeout_s) as client:
        return list(await asyncio.gather(*(probe(client, n, u) for n, u in peers.items())))


async def consumer_lag(settings: GatewaySettings) -> list[dict[str, Any]]:
    """Per consumer group: committed offset vs end offset for each partition it has committed.

    Only groups of this deployment (``topic_prefix``) are listed.
    """
    options = settings.kafka_client_options()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **options)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, **options)
    await admin.start()
    await consumer.start()
    try:
        groups = sorted({str(g[0]) for g in await admin.list_consumer_groups()})
        prefix = settings.topic_prefix
        out: list[dict[str, Any]] = []
        for group in groups:
            if prefix and not group.startswith(prefix):
                continue
            offsets = await admin.list_consumer_group_offsets(group)
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            if prefix:
                committed = {tp: o for tp, o in committed.items() if tp.topic.startswith(prefix)}
            ends: dict[TopicPartition, int] = (
                await consumer.end_offsets(list(committed)) if committed else {}
            )
            topics: dict[str, dict[str, int]] = {}
            for tp, offset in committed.items():
                entry = topics.setdefault(tp.topic, {"lag": 0, "committed": 0, "end": 0})
                end = int(ends.get(tp, offset))
                entry["lag"] += max(0, end - offset)
                entry["committed"] += offset
                entry["end"] += end
            out.append(
                {
                    "group": group,
                    "lag": sum(t["lag"] for t in topics.values()),
                    "topics": [{"topic": name, **v} for name, v in sorted(topics.items())],
                }
            )
        return out
    finally:
        await consumer.stop()
        await admin.close()


async def replay(gw: GatewayService, caller: Caller, letter_id: str) -> Document:
    """Republish a dead letter's original record to its ``x-original-topic`` (consumers dedupe
    by id), count the replay and audit it; the dead letter without its raw record.

    Unknown or out of scope: ``NotFound``; no original topic to send it to: ``Conflict``."""
    doc = await queries.dead_letter(gw.db, caller.scope, letter_id)
    if doc is None:
        raise NotFound(f"dead letter {letter_id} not found")
    topic = doc.get("original_topic")
    if not topic:
        raise Conflict("the record carries no x-original-topic header")
    headers = {
        k: base64.b64decode(v).decode("utf-8", "replace")
        for k, v in doc.get("headers_b64") or []
        if not k.startswith("x-")
    }
    headers["x-replayed-from"] = letter_id
    key = base64.b64decode(doc["key_b64"]) if doc.get("key_b64") else None
    await gw.publish_raw(topic, key, base64.b64decode(doc["value_b64"]), headers)
    updated = await storage.mark_replayed(gw.db, letter_id, caller.principal.sub, gw.clock.now())
    await gw.record_by(caller, "replay", "dead_letters", [letter_id], details={"topic": topic})
    raw = queries.RAW_FIELDS[storage.DEAD_LETTERS]
    return updated or {k: v for k, v in doc.items() if k not in raw}
