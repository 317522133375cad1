"""One engine per raw partition, restored from the log whenever its state is not current.

Shared by the Faust worker and by ``fiml rebuild``. Recovery: an engine must have seen
exactly the offsets before the record it is given. After a start, a restart or a
rebalance it has not, so :meth:`Arbiter.handle` first builds a new engine by replaying the
partition from its first retained offset up to that record, discarding the outputs, then
reads the marker of the last record already written in each output partition; outputs up
to those markers are not written again. So a worker killed mid-stream continues exactly
where its outputs stopped, with the state an uninterrupted run would have.
"""

from __future__ import annotations

import logging

from arbitration.config import EngineConfig
from arbitration.engine import PartitionEngine, SourceRecord
from arbitration.feeds import StatusFeed, read_partition, written_markers
from arbitration.outputs import Marker, Message, messages
from fiml.settings import Settings

log = logging.getLogger("fiml.arbitration")


class Arbiter:
    """Raw records of any partition in, messages to write out."""

    def __init__(self, source: Settings, target: Settings, feed: StatusFeed) -> None:
        self.source = source
        self.target = target
        self.feed = feed
        self.config = EngineConfig.from_settings(source)
        self.raw_topic = source.topic("ticks.raw")
        self.engines: dict[int, PartitionEngine] = {}
        self.written: dict[int, dict[str, Marker]] = {}

    async def handle(self, partition: int, record: SourceRecord) -> list[Message]:
        """Process the next record of ``partition``; the messages not yet written."""
        engine = self.engines.get(partition)
        if engine is None or engine.next_offset != record.offset:
            engine = await self.restore(partition, record.offset)
        await self.feed.ensure(record.timestamp_us)
        return messages(record.offset, engine.process(record), self.written[partition])

    async def restore(self, partition: int, offset: int) -> PartitionEngine:
        """A new engine for ``partition`` that has seen every record before ``offset``."""
        engine = PartitionEngine(self.config, self.raw_topic, partition, self.feed.timeline)
        replayed = 0
        async for record in read_partition(self.source, self.raw_topic, partition, offset):
            await self.feed.ensure(record.timestamp_us)
            engine.process(record)
            replayed += 1
        self.written[partition] = await written_markers(self.target, partition)
        self.engines[partition] = engine
        log.info("partition %d: state rebuilt from %d records before offset %d; written: %s",
                 partition, replayed, offset, self.written[partition])
        return engine
