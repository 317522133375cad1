"""The Kafka side of arbitration: the status feed, partition reads and batches, written
markers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from arbitration.engine.config import EngineConfig
from arbitration.engine.outputs import Marker, parse_marker
from arbitration.engine.partition import ROLES, SourceRecord
from arbitration.engine.statuses import StatusTimeline
from arbitration.partition_batch import PartitionBatch
from runtime.intake import decode_or_skip
from runtime.kafka import make_consumer, topic_partitions
from runtime.settings import Settings
from schemas import ProviderStatus
from schemas.topics import TopicRole


class StatusFeed:
    """Reads ``provider.status`` into a :class:`StatusTimeline`, up to its end when needed.

    Before a raw record with Kafka time ``K`` is processed, :meth:`ensure` reads the status
    topic to its end unless that was done after a raw record with time at least
    ``K - slack`` was read. The slack is half of ``status delay - future tolerance``; see
    ``arbitration/statuses.py`` for why that makes the merge deterministic. Each read to the
    end costs a round trip to the broker (tens of ms behind the consumer's own fetch), so
    once half the slack has passed :meth:`ensure` starts the next read in the background: in
    a steady stream the raw records never wait for one.
    """

    def __init__(self, settings: Settings, config: EngineConfig) -> None:
        self.settings = settings
        self.timeline = StatusTimeline()
        self.slack_us = (config.effective_status_delay_us - config.future_tolerance_us) // 2
        self._covered: int | None = None
        self._newest_seen: int | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and assign every status partition from its beginning."""
        self._consumer = make_consumer(self.settings, "fiml-arbitration-status")
        await self._consumer.start()
        self._partitions = await topic_partitions(
            self.settings, self.settings.topic(TopicRole.STATUS)
        )
        if self._partitions:
            self._consumer.assign(self._partitions)
            await self._consumer.seek_to_beginning(*self._partitions)

    async def stop(self) -> None:
        """Stop reading and disconnect."""
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.wait([self._reading])
            self._reading = None
        if self._consumer is not None:
            await self._consumer.stop()

    async def ensure(self, timestamp_us: int) -> None:
        """Make sure every status a raw record of this Kafka time may need has been read."""
        if self._newest_seen is None or timestamp_us > self._newest_seen:
            self._newest_seen = timestamp_us
        if self._reading is not None and (self._reading.done() or not self._covers(timestamp_us)):
            reading, self._reading = self._reading, None
            await reading
        if not self._covers(timestamp_us):
            await self._read_to_end()
        elif self._reading is None and not self._covers(self._newest_seen + self.slack_us // 2):
            self._reading = asyncio.create_task(self._read_to_end())

    def _covers(self, timestamp_us: int) -> bool:
        return self._covered is not None and timestamp_us <= self._covered + self.slack_us

    async def _read_to_end(self) -> None:
        seen = self._newest_seen
        assert seen is not None, "ensure notes the newest time first"
        await self._catch_up()
        self._covered = seen if self._covered is None else max(self._covered, seen)

    async def _catch_up(self) -> None:
        consumer = self._consumer
        if not self._partitions or consumer is None:
            return
        ends = await consumer.end_offsets(self._partitions)
        pending = {tp for tp in self._partitions if await consumer.position(tp) < ends[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for records in batches.values():
                for record in records:
                    status = decode_or_skip(record, ProviderStatus)
                    if status is not None:
                        self.timeline.add(status)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}


def source_records(group: list[PartitionBatch]) -> dict[int, list[SourceRecord]]:
    """The records of ``group`` by partition, in offset order."""
    found: dict[int, list[SourceRecord]] = {}
    for batch in group:
        found.setdefault(batch.tp.partition, []).extend(map(source_record, batch.records))
    return found


def source_record(record: ConsumerRecord) -> SourceRecord:
    """A fetched record as the engines take it: Kafka time in µs."""
    return SourceRecord(record.offset, record.key, record.value, record.timestamp * 1000)


async def read_partition(
    settings: Settings, topic: str, partition: int, end: int, start: int | None = None
) -> AsyncIterator[SourceRecord]:
    """Records of one partition from ``start`` (else its first retained offset) up to
    ``end`` (excluded)."""
    consumer = make_consumer(settings, "fiml-arbitration-replay", max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if start is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
            for record in batches.get(tp, []):
                if record.offset >= end:
                    return
                yield source_record(record)
    finally:
        await consumer.stop()


async def written_markers(settings: Settings, partition: int) -> dict[TopicRole, Marker]:
    """Marker of the last record in ``partition`` of each output topic that has one."""
    consumer = make_consumer(settings, "fiml-arbitration-markers")
    await consumer.start()
    try:
        markers: dict[TopicRole, Marker] = {}
        for role in ROLES.values():
            record = await last_record(consumer, TopicPartition(settings.topic(role), partition))
            marker = None if record is None else parse_marker(record.headers)
            if marker is not None:
                markers[role] = marker
        return markers
    finally:
        await consumer.stop()


async def last_record(consumer: AIOKafkaConsumer, tp: TopicPartition) -> ConsumerRecord | None:
    """The last record of ``tp`` (assigning ``consumer`` to it), or None if it is empty."""
    consumer.assign([tp])
    start = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    if end <= start:
        return None
    consumer.seek(tp, end - 1)
    records = (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
    return records[-1] if records else None
