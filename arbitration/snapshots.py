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

Format: ``FORMAT`` (a magic and a version), then the zlib-compressed pickle of the engine
with its :class:`EngineConfig`, the status timeline (shared, read from the status topic)
pickled as a reference that loading replaces with the live one. Reading uses an unpickler
that only builds the engine's own classes and a few built-in containers, so a record that
is not ours cannot run code, and it is bounded: at most ``MAX_SNAPSHOT_BYTES`` compressed
and ``MAX_STATE_BYTES`` once decompressed (a small record cannot expand without limit).
Whatever fails in loading (not a snapshot, another format version, another engine
configuration, bytes that decompress or unpickle to anything else) makes the worker rebuild
the partition's state from the log instead, with a warning and a count in
``fiml_records_skipped_total``: a snapshot only ever saves time.
"""

from __future__ import annotations

import collections
import io
import logging
import pickle
import zlib

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from arbitration.engine.candles import CandleSeries, OpenCandle
from arbitration.engine.config import EngineConfig, Weights
from arbitration.engine.partition import PartitionEngine
from arbitration.engine.provider_view import ProviderView
from arbitration.engine.quote_book import SymbolBook
from arbitration.engine.statuses import ProviderHealth, StatusTimeline
from arbitration.feeds import last_record
from runtime.intake import skip
from runtime.kafka import make_consumer, topic_partitions
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas.records import Quote, RawTick
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration")

SNAPSHOT_EVERY = 50_000
MAX_SNAPSHOT_BYTES = 900_000
MAX_STATE_BYTES = 32 * 1024 * 1024
FORMAT = b"FIMLSNAP\x03"
TIMELINE = "statuses"

ALLOWED = {
    (cls.__module__, cls.__qualname__)
    for cls in (
        PartitionEngine,
        SymbolBook,
        ProviderView,
        CandleSeries,
        OpenCandle,
        ProviderHealth,
        EngineConfig,
        Weights,
        RawTick,
        Quote,
        collections.Counter,
        collections.deque,
    )
}


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this worker can use; ``reason`` says which way."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, timeline: StatusTimeline) -> None:
        super().__init__(file, protocol=5)
        self.timeline = timeline

    def persistent_id(self, obj: object) -> str | None:
        return TIMELINE if obj is self.timeline else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, timeline: StatusTimeline) -> None:
        super().__init__(file)
        self.timeline = timeline

    def persistent_load(self, pid: object) -> StatusTimeline:
        if pid != TIMELINE:
            raise SnapshotError("corrupt", f"unknown reference {pid!r}")
        return self.timeline

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in ALLOWED:
            raise SnapshotError("corrupt", f"a snapshot may not contain {module}.{name}")
        found: type = super().find_class(module, name)
        return found


def dumps(engine: PartitionEngine) -> bytes:
    """The snapshot of ``engine``'s state (the engine is left as it is)."""
    buffer = io.BytesIO()
    _Pickler(buffer, engine.statuses).dump(engine)
    state = buffer.getbuffer()
    if len(state) > MAX_STATE_BYTES:
        raise SnapshotError(
            "oversize", f"{len(state)} bytes of state, over the limit of {MAX_STATE_BYTES}"
        )
    return FORMAT + zlib.compress(state, 1)


def loads(data: bytes | None, config: EngineConfig, timeline: StatusTimeline) -> PartitionEngine:
    """The engine of a snapshot, reading statuses from ``timeline``.

    Raises :class:`SnapshotError`, and nothing else, if ``data`` is not a snapshot of this
    format or was taken under another configuration.
    """
    if data is None:
        raise SnapshotError("null", "no value: a tombstone, not a snapshot")
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(
            "oversize", f"{len(data)} bytes, over the limit of {MAX_SNAPSHOT_BYTES}"
        )
    if not data.startswith(FORMAT):
        raise SnapshotError("format", f"not a snapshot of this format (version {FORMAT[-1]})")
    try:
        inflater = zlib.decompressobj()
        state = inflater.decompress(data[len(FORMAT) :], MAX_STATE_BYTES)
        if inflater.unconsumed_tail:
            raise SnapshotError("oversize", f"decompresses to more than {MAX_STATE_BYTES} bytes")
        if not inflater.eof:
            raise SnapshotError("truncated", "the compressed state ends early")
        engine = _Unpickler(io.BytesIO(state), timeline).load()
    except SnapshotError:
        raise
    except Exception as error:  # unpickling bad bytes can raise almost anything
        raise SnapshotError(
            "corrupt", f"not a snapshot: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(engine, PartitionEngine):
        raise SnapshotError("corrupt", f"not a snapshot: a {type(engine).__name__}")
    if engine.config != config:
        raise SnapshotError("config", "taken under another engine configuration")
    return engine


class SnapshotStore:
    """The snapshots of one deployment's engines in its ``arbitration.state`` topic."""

    def __init__(self, settings: Settings, every: int = SNAPSHOT_EVERY) -> None:
        self.settings = settings
        self.topic = settings.topic(TopicRole.STATE)
        self.every = every
        self._taken: dict[int, int | None] = {}

    async def create_topic(self) -> None:
        """Create the compacted state topic if missing (``fiml topics create`` makes it too)."""
        await create_topics(self.settings, [self.settings.topics()[TopicRole.STATE]])

    async def load(
        self, partition: int, config: EngineConfig, timeline: StatusTimeline
    ) -> PartitionEngine | None:
        """The engine of the last snapshot of ``partition``, or None if there is none."""
        tp = TopicPartition(self.topic, partition)
        if tp not in await topic_partitions(self.settings, self.topic):
            return None
        consumer = make_consumer(
            self.settings,
            "fiml-arbitration-state",
            max_partition_fetch_bytes=2 * MAX_SNAPSHOT_BYTES,
        )
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
            skip(self.topic, partition, record.offset, error.reason, str(error))
            log.warning(
                "partition %d: snapshot ignored, state rebuilt from the log: %s", partition, error
            )
            return None
        self._taken[partition] = engine.next_offset
        return engine

    def due(self, engine: PartitionEngine) -> bool:
        """Whether ``engine`` has no snapshot from this store yet or went ``every`` records
        past its last one."""
        taken = self._taken.get(engine.partition)
        done = engine.next_offset
        return taken is None or (done is not None and done - taken >= self.every)

    async def save(self, producer: AIOKafkaProducer, engine: PartitionEngine) -> bool:
        """Write a snapshot of ``engine``, whose outputs the broker has acknowledged; False if
        it is too large for one record or could not be written, and was skipped (the
        previous one stays)."""
        self._taken[engine.partition] = engine.next_offset
        problem: str | None
        try:
            data = dumps(engine)
        except SnapshotError as error:
            data, problem = b"", str(error)
        else:
            problem = (
                f"{len(data)} bytes, over the limit of {MAX_SNAPSHOT_BYTES}"
                if len(data) > MAX_SNAPSHOT_BYTES
                else None
            )
        if problem is None:
            try:
                await producer.send_and_wait(
                    self.topic, data, partition=engine.partition, key=str(engine.partition).encode()
                )
                return True
            except KafkaError as error:
                problem = f"not written: {type(error).__name__}: {error}"
        log.warning("partition %d: snapshot skipped (%s)", engine.partition, problem)
        return False
