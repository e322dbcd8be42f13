"""End-of-run accounting for the system tests: every event is where it should be.

Checks are read straight from Kafka and MongoDB after the platform is quiet:

* each ingest event id is in the inbox of every service that consumes its type, or in that
  service's quarantine, or on the topic's DLT with an explanation;
* no notice twice for one idempotency key; no timer fired twice;
* every DLT record carries its error headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from shared.consumer import ERROR_HEADERS
from shared.topics import ALL_TOPICS

CONSUMERS: dict[str, list[tuple[str, str]]] = {
    # event type -> [(service, consumed topic)]
    "gov.12345.workorder.created": [("hotline", "ingest.hotline.workorders")],
    "gov.12345.workorder.updated": [("hotline", "ingest.hotline.workorders")],
    "gov.enforcement.case.closed": [
        ("casereview", "ingest.enforcement.cases"),
        ("hotline", "ingest.enforcement.cases"),
    ],
    "gov.enforcement.penalty.decided": [("penalty", "ingest.enforcement.cases")],
    "gov.enforcement.penalty.filed": [("penalty", "ingest.enforcement.cases")],
    **{
        f"gov.enforcement.{kind}": [("inspection", "ingest.enforcement.inspections")]
        for kind in (
            "inspection.planned",
            "inspection.conducted",
            "officer.certified",
            "officer.suspended",
            "officer.revoked",
            "review.decided",
        )
    },
}


@dataclass
class Accounting:
    missing: list[str] = field(default_factory=list)
    duplicate_notices: list[Any] = field(default_factory=list)
    timers_fired_twice: list[Any] = field(default_factory=list)
    unexplained_dead_letters: list[Any] = field(default_factory=list)
    dead_letters: int = 0
    quarantined: int = 0
    processed: int = 0


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def account(
    bootstrap: str, mongo: AsyncMongoClient[Any], sent: list[Any], prefix: str = ""
) -> Accounting:
    result = Accounting()
    dlt_ids: set[tuple[str, str]] = set()
    for topic in ALL_TOPICS:
        if not topic.dead_letter:
            continue
        for record in await read_topic(bootstrap, topic.dlt(prefix)):
            result.dead_letters += 1
            headers = {k: v.decode("utf-8", "replace") for k, v in record.headers}
            if not all(h in headers for h in ERROR_HEADERS):
                result.unexplained_dead_letters.append(headers)
            consumer = headers.get("x-consumer", "")
            dlt_ids.add((consumer.split(".", 1)[0], headers.get("ce_id", "")))
    for event in sent:
        for service, consumed in CONSUMERS.get(event.type, []):
            db = mongo[f"jiandu_{service}"]
            key = f"{service}.{consumed}:{event.id}"
            if await db["inbox"].find_one({"ids": key}):
                result.processed += 1
            elif await db["quarantine"].find_one({"event_id": event.id}):
                result.quarantined += 1
            elif (service, event.id) in dlt_ids:
                pass
            else:
                result.missing.append(f"{service} never took {event.type} {event.id}")
    notify = mongo["jiandu_notify"]
    for coll in await notify.list_collection_names():
        docs = await notify[coll].aggregate(
            [
                {"$match": {"idempotency_key": {"$exists": True}}},
                {"$group": {"_id": "$idempotency_key", "n": {"$sum": 1}}},
                {"$match": {"n": {"$gt": 1}}},
            ]
        )
        if coll in ("notices",):
            result.duplicate_notices.extend(await docs.to_list())
    for service in ("hotline", "casereview", "penalty", "notify", "gateway", "inspection"):
        timers = mongo[f"jiandu_{service}"]["timers"]
        twice = await timers.find({"fired_count": {"$gt": 1}}).to_list()
        result.timers_fired_twice.extend(twice)
    return result
