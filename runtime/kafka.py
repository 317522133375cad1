"""aiokafka clients with the project's defaults, and what the services read with them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.structs import ConsumerRecord

from runtime.kafka_security import security_options
from runtime.private import private_attribute
from runtime.settings import Settings

log = logging.getLogger("fiml.kafka")


def make_producer(settings: Settings, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer (acks=all) that batches for up to 5 ms."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        **security_options(settings),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


#: How long a fetch of any consumer of ours may wait at the broker for data: aiokafka keeps
#: one fetch in flight per broker, and a partition that runs out of buffered records waits
#: behind it (arbitration/batch_delivery.py sets it for Faust's consumer too).
FETCH_MAX_WAIT_MS = 50


def make_consumer(settings: Settings, client_id: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer with no group: callers assign partitions and seek themselves."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        **security_options(settings),
    }
    options.update(overrides)
    return AIOKafkaConsumer(**options)


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client of the cluster."""
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **security_options(settings)
    )


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, or an empty list if the cluster does not have it."""
    admin = make_admin(settings)
    await admin.start()
    try:
        return await described_partitions(admin, topic)
    finally:
        await admin.close()


async def partitions_once_created(
    settings: Settings, topic: str, retry_s: float = 1.0
) -> list[TopicPartition]:
    """The partitions of ``topic``, waiting ``retry_s`` between looks until it exists."""
    partitions = await topic_partitions(settings, topic)
    if not partitions:
        log.warning("topic %s not found; waiting for it", topic)
    while not partitions:
        await asyncio.sleep(retry_s)
        partitions = await topic_partitions(settings, topic)
    return partitions


async def described_partitions(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic`` as ``admin`` describes them (none if it does not exist)."""
    described = await admin.describe_topics([topic])
    numbers = sorted(
        partition["partition"]
        for entry in described
        if entry["topic"] == topic and entry["error_code"] == 0
        for partition in entry["partitions"]
    )
    return [TopicPartition(topic, number) for number in numbers]


def connected(client: AIOKafkaClient) -> bool:
    """Whether a client holds at least one open connection to a broker (it drops those a
    broker closes and opens new ones as it needs them)."""
    conns = private_attribute(client, "_conns", "aiokafka")
    return any(conn.connected() for conn in conns.values())


async def read_tail(settings: Settings, topic: str, count: int) -> list[ConsumerRecord]:
    """Up to the last ``count`` records of each partition of ``topic`` (none if it does not
    exist), per partition in offset order."""
    partitions = await topic_partitions(settings, topic)
    return await read_until_end(settings, partitions, lambda start, end: max(start, end - count))


async def read_until_end(
    settings: Settings,
    partitions: list[TopicPartition],
    first: Callable[[int, int], int] = lambda start, end: start,
) -> list[ConsumerRecord]:
    """The records of ``partitions`` from ``first(start, end)`` of each (by default its
    start) up to its end when called, per partition in offset order."""
    if not partitions:
        return []
    consumer = make_consumer(settings, "fiml-tail")
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        pending = set()
        for tp in partitions:
            offset = first(starts[tp], ends[tp])
            if ends[tp] > max(offset, starts[tp]):
                consumer.seek(tp, max(offset, starts[tp]))
                pending.add(tp)
        found: list[ConsumerRecord] = []
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                found.extend(record for record in records if record.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return found
    finally:
        await consumer.stop()
