"""aiokafka client factories with the project's defaults."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

from fiml.settings import Settings


def make_producer(settings: Settings, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer (acks=all) that batches for up to 5 ms."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(settings: Settings, client_id: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer with no group: callers assign partitions and seek themselves."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 50,
    }
    options.update(overrides)
    return AIOKafkaConsumer(**options)


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, or an empty list if the cluster does not have it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
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
    return any(conn.connected() for conn in client._conns.values())
