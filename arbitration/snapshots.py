"""Snapshots of a partition engine's state, so that a restart replays a bounded stretch.

The state of a :class:`PartitionEngine` after the raw offsets before ``S`` is a pure
function of those records (and of the status topic), whenever it is taken; a snapshot is
that state, written to partition ``p`` of the compacted topic ``<prefix>.arbitration.state``
(key ``p``) with ``S`` = its ``next_offset``. The worker takes one per partition every
``SNAPSHOT_EVERY`` raw records, after flushing the producer, so a snapshot at ``S`` also
says that every output of the offsets before ``S`` is in the log. Recovery (see
``arbitration/arbiter.py``) loads the last snapshot and replays only the records between
it and the first record it is given; a restart therefore replays at most
``SNAPSHOT_EVERY`` records plus those processed since the last offset commit, whatever the
retention of the raw topic.

Format: zlib-compressed pickle of the engine without its status timeline (shared, read from
the status topic) and with its :class:`EngineConfig`; a snapshot taken under another
configuration is ignored. Reading uses an unpickler that only builds the engine's own
classes and a few built-in containers, so a record that is not ours cannot run code.
"""

from __future__ import annotations

import collections
import io
import logging
import pickle
import zlib

from aiokafka import AIOKafkaProducer, TopicPartition

from arbitration.candles import CandleSeries, OpenCandle
from arbitration.config import EngineConfig, Weights
from arbitration.engine import PartitionEngine
from arbitration.feeds import last_record
from arbitration.quote_book import ProviderView, SymbolBook
from arbitration.statuses import ProviderHealth, StatusTimeline
from fiml.kafka_clients import make_consumer, topic_partitions
from fiml.settings import Settings
from fiml.topics import create_topics
from schemas.records import Quote, RawTick

log = logging.getLogger("fiml.arbitration")

STATE_ROLE = "arbitration.state"
SNAPSHOT_EVERY = 50_000
MAX_SNAPSHOT_BYTES = 900_000

ALLOWED = {(cls.__module__, cls.__qualname__) for cls in (
    PartitionEngine, SymbolBook, ProviderView, CandleSeries, OpenCandle, ProviderHealth,
    EngineConfig, Weights, RawTick, Quote, collections.Counter, collections.deque)}


class SnapshotError(ValueError):
    """Bytes that are not a snapshot of ours."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in ALLOWED:
            raise SnapshotError(f"a snapshot may not contain {module}.{name}")
        return super().find_class(module, name)


def dumps(engine: PartitionEngine) -> bytes:
    """The snapshot of ``engine``'s state."""
    timeline, engine.statuses = engine.statuses, None
    try:
        return zlib.compress(pickle.dumps(engine, protocol=5), 1)
    finally:
        engine.statuses = timeline


def loads(data: bytes, config: EngineConfig, timeline: StatusTimeline) -> PartitionEngine:
    """The engine of a snapshot, reading statuses from ``timeline``.

    Raises :class:`SnapshotError` if ``data`` is not a snapshot or was taken under another
    configuration.
    """
    try:
        engine = _Unpickler(io.BytesIO(zlib.decompress(data))).load()
    except (zlib.error, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as error:
        raise SnapshotError(f"not a snapshot: {error}") from error
    if not isinstance(engine, PartitionEngine):
        raise SnapshotError(f"not a snapshot: a {type(engine).__name__}")
    if engine.config != config:
        raise SnapshotError("taken under another engine configuration")
    engine.statuses = timeline
    return engine


class SnapshotStore:
    """The snapshots of one deployment's engines in its ``arbitration.state`` topic."""

    def __init__(self, settings: Settings, every: int = SNAPSHOT_EVERY) -> None:
        self.settings = settings
        self.topic = settings.topic(STATE_ROLE)
        self.every = every
        self._taken: dict[int, int] = {}

    async def create_topic(self) -> None:
        """Create the compacted state topic if missing (``fiml topics create`` makes it too)."""
        await create_topics(self.settings, [self.settings.topics()[STATE_ROLE]])

    async def load(self, partition: int, config: EngineConfig,
                   timeline: StatusTimeline) -> PartitionEngine | None:
        """The engine of the last snapshot of ``partition``, or None if there is none."""
        tp = TopicPartition(self.topic, partition)
        if tp not in await topic_partitions(self.settings, self.topic):
            return None
        consumer = make_consumer(self.settings, "fiml-arbitration-state",
                                 max_partition_fetch_bytes=2 * MAX_SNAPSHOT_BYTES)
        await consumer.start()
        try:
            record = await last_record(consumer, tp)
        finally:
            await consumer.stop()
        if record is None:
            return None
        try:
            engine = loads(record.value, config, timeline)
        except SnapshotError as error:
            log.warning("partition %d: snapshot ignored: %s", partition, error)
            return None
        self._taken[partition] = engine.next_offset
        return engine

    def due(self, engine: PartitionEngine) -> bool:
        """Whether ``engine`` has no snapshot from this store yet or went ``every`` records
        past its last one."""
        taken = self._taken.get(engine.partition)
        return taken is None or engine.next_offset - taken >= self.every

    async def save(self, producer: AIOKafkaProducer, engine: PartitionEngine) -> bool:
        """Send a snapshot of ``engine``, whose outputs the caller has flushed; False if it is
        too large for one record and was skipped (the previous one stays)."""
        self._taken[engine.partition] = engine.next_offset
        data = dumps(engine)
        if len(data) > MAX_SNAPSHOT_BYTES:
            log.warning("partition %d: snapshot of %d bytes skipped (limit %d)",
                        engine.partition, len(data), MAX_SNAPSHOT_BYTES)
            return False
        await producer.send(self.topic, data, key=str(engine.partition).encode(),
                            partition=engine.partition)
        return True
