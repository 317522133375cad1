"""One engine per raw partition, restored whenever its state is not current.

Shared by the Faust worker and by ``fiml rebuild``. Recovery: an engine must have seen
exactly the offsets before the record it is given. After a start, a restart or a
rebalance it has not, so :meth:`Arbiter.handle_batch` first restores one: from the last
snapshot of the partition if there is one (``arbitration/snapshots.py``; the worker takes
them, the rebuild does not), else a new engine; then it replays the partition from the
snapshot's offset (else the first retained offset) up to that record, discarding the
outputs, and reads the marker of the last record already written in each output
partition; outputs up to those markers are not written again. If the snapshot is ahead of
the record (the previous run snapshotted after its last offset commit), the records before
the snapshot are skipped: their outputs were flushed before the snapshot was taken. So a
worker killed mid-stream continues exactly where its outputs stopped, with the state an
uninterrupted run would have, after replaying at most the snapshot interval plus what was
processed since the last offset commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from arbitration.configure import engine_config
from arbitration.engine.outputs import Marker, Message, messages
from arbitration.engine.partition import PartitionEngine, SourceRecord
from arbitration.feeds import StatusFeed, read_partition, written_markers
from arbitration.snapshots import SnapshotStore
from runtime.schema_ids import learn_ids
from runtime.settings import Settings
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration")


class Arbiter:
    """Raw records of any partition in, messages to write out."""

    def __init__(
        self,
        source: Settings,
        target: Settings,
        feed: StatusFeed,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.feed = feed
        self.snapshots = snapshots
        self.config = engine_config(source)
        self.raw_topic = source.topic(TopicRole.RAW)
        self.engines: dict[int, PartitionEngine] = {}
        self.written: dict[int, dict[TopicRole, Marker]] = {}
        self.replayed = 0
        self._ahead: dict[int, int] = {}

    async def handle(self, partition: int, record: SourceRecord) -> list[Message]:
        """Process the next record of ``partition``; the messages not yet written."""
        return (await self.handle_batch(partition, [record]))[0]

    async def handle_batch(
        self, partition: int, records: Sequence[SourceRecord]
    ) -> list[list[Message]]:
        """Process the next records of ``partition`` in offset order; for each, the messages
        not yet written.

        The status feed is read up to date once for the whole batch, after every record of
        it was read from Kafka, which is what :meth:`StatusFeed.ensure` asks for each.
        """
        if not records:
            return []
        await learn_ids(record.value for record in records)
        await self.feed.ensure(max(record.timestamp_us for record in records))
        engine = self.engines.get(partition)
        found: list[list[Message]] = []
        for record in records:
            ahead = self._ahead.get(partition)
            if (
                ahead is not None
                and engine is not None
                and record.offset < ahead == engine.next_offset
            ):
                found.append([])
                continue
            if engine is None or engine.next_offset != record.offset:
                engine = await self.restore(partition, record.offset)
                if engine.next_offset is not None and record.offset < engine.next_offset:
                    self._ahead[partition] = engine.next_offset
                    found.append([])
                    continue
            self._ahead.pop(partition, None)
            found.append(messages(record.offset, engine.process(record), self.written[partition]))
        return found

    async def restore(self, partition: int, offset: int) -> PartitionEngine:
        """An engine for ``partition`` that has seen every record before ``offset``, or, from
        a snapshot, more."""
        engine = None
        if self.snapshots is not None:
            engine = await self.snapshots.load(partition, self.config, self.feed.timeline)
        start = None if engine is None else engine.next_offset
        if engine is None:
            engine = PartitionEngine(self.config, self.raw_topic, partition, self.feed.timeline)
        replayed = 0
        if start is None or start < offset:
            async for record in read_partition(
                self.source, self.raw_topic, partition, offset, start
            ):
                await self.feed.ensure(record.timestamp_us)
                await learn_ids((record.value,))
                engine.process(record)
                replayed += 1
                self.replayed += 1
        self.written[partition] = await written_markers(self.target, partition)
        self.engines[partition] = engine
        log.info(
            "partition %d: state rebuilt from %d records before offset %d (snapshot at "
            "%s); written: %s",
            partition,
            replayed,
            offset,
            start,
            self.written[partition],
        )
        return engine

    def forget(self, partition: int) -> None:
        """Drop the engine of ``partition``: its next record restores one from the log, which
        writes only the outputs the output partitions do not hold yet."""
        self.engines.pop(partition, None)
        self.written.pop(partition, None)
        self._ahead.pop(partition, None)

    async def checkpoint(self, producer: AIOKafkaProducer) -> int:
        """Snapshot the engines that are due (flushing ``producer`` first); how many."""
        if self.snapshots is None:
            return 0
        due = [engine for engine in self.engines.values() if self.snapshots.due(engine)]
        if not due:
            return 0
        await producer.flush()
        for engine in due:
            await self.snapshots.save(producer, engine)
        return len(due)
