"""Writing and reading test records on the broker: settings with topics of their own, the
tests' one producer helper, a topic read to its end, and retention at work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.structs import RecordMetadata

from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.settings import Settings
from schemas import Candle, DecodeError, Demand, ProviderStatus, decode, encode

# Tests write records with fixed event times (tests/factories.py's BASE_US, November 2025);
# the broker's retention check would delete them mid-session under the default retention
# of days, so test topics keep records for about ten years, and history may ask for as long
# a range.
TEST_RETENTION_HOURS = 10 * 365 * 24


def settings_on(kafka_bootstrap: str) -> Settings:
    """Settings on the broker at ``kafka_bootstrap``, with a topic prefix of their own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    retention = {
        f"{kind}_retention_hours": TEST_RETENTION_HOURS
        for kind in ("raw", "status", "quotes", "trades", "candles", "dlq")
    }
    return Settings.from_env(
        env,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test-{uuid.uuid4().hex[:10]}",
        partitions=3,
        max_history_range_hours=TEST_RETENTION_HOURS,
        **retention,
    )


WrittenMs = int | Callable[[Any], int] | None


@dataclass(frozen=True)
class Entry:
    """A value to write (a record, encoded on the way, or raw bytes) with the key, partition
    and Kafka time (ms) it should have; unset, they are the record's own key, the key's
    partition and now."""

    value: Any
    key: bytes | None = None
    partition: int | None = None
    written_ms: int | None = None


def key_of(record: Any) -> bytes | None:
    """The key the services write a record with: a status's provider, a demand's
    ``SYMBOL|GATEWAY``, else its symbol; None for raw bytes."""
    if isinstance(record, ProviderStatus):
        return record.provider.encode()
    if isinstance(record, Demand):
        return f"{record.symbol}|{record.gateway}".encode()
    if isinstance(record, bytes | None):
        return None
    return str(record.symbol).encode()


def ingest_ms(record: Any) -> int:
    """The Kafka time the services give a record: its ingest time (a candle has none: its
    open time stands in), in ms."""
    return (record.open_time if isinstance(record, Candle) else record.ts_ingest) // 1000


class Producer:
    """Writes values to the topics of ``settings``, each partition's in order."""

    def __init__(self, settings: Settings, producer: Any) -> None:
        self.settings = settings
        self.producer = producer

    async def send(self, role: str, value: Any, **options: Any) -> asyncio.Future[RecordMetadata]:
        """Hand one value (or :class:`Entry`) to the producer; its delivery future.
        ``options`` are those of :class:`Entry`, ``written_ms`` also a function of the
        record."""
        entry = value if isinstance(value, Entry) else Entry(value, **_resolved(value, options))
        payload = entry.value
        key = entry.key if entry.key is not None else key_of(payload)
        if payload is not None and not isinstance(payload, bytes):
            payload = encode(payload)
        return await self.producer.send(
            self.settings.topic(role),
            payload,
            key=key,
            partition=entry.partition,
            timestamp_ms=entry.written_ms,
        )

    async def write(self, role: str, values: Iterable[Any], **options: Any) -> list[RecordMetadata]:
        """Send every value in order and wait until the broker acknowledged them all."""
        futures = [await self.send(role, value, **options) for value in values]
        return [await future for future in futures]

    async def flush(self) -> None:
        """Wait until everything sent so far is acknowledged."""
        await self.producer.flush()


def _resolved(value: Any, options: dict[str, Any]) -> dict[str, Any]:
    written_ms = options.get("written_ms")
    if callable(written_ms):
        return {**options, "written_ms": written_ms(value)}
    return options


@contextlib.asynccontextmanager
async def producing(settings: Settings, **overrides: Any) -> AsyncIterator[Producer]:
    """A :class:`Producer` while the block runs."""
    producer = make_producer(settings, "fiml-tests", **overrides)
    await producer.start()
    try:
        yield Producer(settings, producer)
    finally:
        await producer.stop()


async def produce(
    settings: Settings, role: str, values: Iterable[Any], **options: Any
) -> list[RecordMetadata]:
    """Write ``values`` to the topic of ``role`` in order (see :meth:`Producer.send`) and
    wait until all are acknowledged."""
    async with producing(settings) as producer:
        return await producer.write(role, values, **options)


async def read_topic(
    settings: Settings, role: str, record_type: type, strict: bool = True
) -> list[tuple]:
    """Every record of a topic up to its current end: (partition, offset, decoded record);
    unless ``strict``, those that do not decode are left out."""
    topic = settings.topic(role)
    partitions = await topic_partitions(settings, topic)
    consumer = make_consumer(settings, "fiml-tests")
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        try:
                            value = decode(record.value, record_type)
                        except DecodeError:
                            if strict:
                                raise
                            continue
                        found.append((tp.partition, record.offset, value))
            for tp in list(pending):  # every one: records deleted meanwhile return no batch
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return found
    finally:
        await consumer.stop()


async def expire_oldest(settings: Settings, role: str) -> None:
    """Delete the first record of every partition holding two or more, as retention would."""
    partitions = await topic_partitions(settings, settings.topic(role))
    consumer = make_consumer(settings, "fiml-tests")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_records(
            {tp: RecordsToDelete(before_offset=1) for tp in partitions if ends[tp] >= 2}
        )
    finally:
        await admin.close()
