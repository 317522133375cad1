"""Read a topic back by event time: the shared replay reader of the gateway, CLI and REST.

Kafka timestamps are set when a record is produced (ingest time, which derived records
inherit from their raw tick), so they never precede the event time by more than
``future_tolerance_ms``. A replay of some symbols reads only the partitions their keys map
to (``runtime/partitioning.py``). Each partition is sought with ``offsets_for_times(start -
future_tolerance_ms)``, read forward and stopped at the log end captured when the replay
opened (or earlier, once its Kafka time passes ``end + replay_lateness_ms``). A partition
holding fewer than ``batch`` fetched records takes what the consumer fetched for it since (at
most ``FETCH_BYTES`` of ``runtime/readers.py``), so memory holds about that much per
partition whatever the range.
``scan_limit`` bounds the records read: a range whose partitions hold more between its first
offsets and those stops is refused, or with ``truncate`` cut to that many (``cut`` then says
where each partition stopped). The reader lets the event loop run once per fetched batch,
so a long read never holds it for more than one batch of decoding.
A heap merges the partitions' heads by (time, partition, offset); a record is decoded when
it becomes its partition's head. The time is the event time, except for candles: every
revision of a bucket has the bucket's open time, so candles (kept by open time) are merged and
paced by the time each revision was written, the Kafka time it inherits from the tick that
made it. A replay at speed then shows a bucket forming as it did live, not its close at its
open.

Without ``end``, :meth:`Replay.records` goes on past those captured ends ("the hand-over"),
from exactly the next offsets, yielding records as they arrive with ``live`` set: every
record from ``start`` on appears exactly once.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from runtime.clock import now_micros
from runtime.intake import INVALID, decode_or_skip, skip
from runtime.partitioning import key_partition
from runtime.readers import ReaderPool
from runtime.replay_request import STREAMS, Keyed, ReplayError, ReplayRequest, StreamSource
from runtime.settings import Settings
from schemas.times import LAST_MICROS, micros_to_iso

DEFAULT_BATCH = 500
FETCH_WAIT_MS = 200


@dataclass(slots=True)
class Replayed:
    """One record read back: where it was, its time (µs: the event time, or for a candle the
    time it was written) and whether it came live.

    Not frozen: a frozen dataclass takes four times as long to make, once per record.
    """

    partition: int
    offset: int
    time: int
    record: Any
    live: bool = False


@dataclass
class _Partition:
    """A partition in a replay: records fetched up to ``stop`` and not merged yet, and
    whether every one of them has been fetched."""

    tp: TopicPartition
    stop: int
    fetched: deque[ConsumerRecord] = field(default_factory=deque)
    done: bool = False


# A partition's head in the merge: (time, partition, offset, the record, its partition).
Head = tuple[int, int, int, Replayed, _Partition]


class Replay:
    """The reader of one :class:`ReplayRequest` of one of ``streams``.

    Use as ``async with Replay(...) as replay: async for item in replay.records()``.
    ``after`` maps partitions to offsets to resume from (a page cursor): a partition starts
    at the later of that offset and the one ``start`` gives. ``readers`` lends the Kafka
    clients (a pool of one of its own without it); ``scan_limit`` and ``truncate`` bound the
    read (module docstring).
    Making one raises :class:`ReplayError` if ``end`` precedes ``start`` or is still to
    come; opening it, if records of the range may be gone: a partition lost records (to
    retention) that this replay would read, and the first it still keeps was written more
    than ``future_tolerance_ms`` after ``start``. A topic that has lost no record can be
    replayed from any start.
    """

    streams: ClassVar[dict[str, StreamSource]] = STREAMS

    def __init__(
        self,
        settings: Settings,
        request: ReplayRequest,
        *,
        batch: int = DEFAULT_BATCH,
        after: dict[int, int] | None = None,
        readers: ReaderPool | None = None,
        scan_limit: int = 0,
        truncate: bool = False,
    ) -> None:
        source = request.check(now_micros(), settings.future_tolerance_ms * 1000, self.streams)
        self.settings = settings
        self.source = source
        self.symbols = frozenset(request.symbols)
        self.keys = frozenset(symbol.encode() for symbol in request.symbols)
        self.start = request.start
        self.end = request.end
        self.timeframe = request.timeframe
        self.batch = batch
        self.after = after or {}
        self.own_readers = readers is None
        self.readers = ReaderPool(settings, 1) if readers is None else readers
        self.scan_limit = scan_limit
        self.truncate = truncate
        self.cut: dict[int, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.partitions: list[_Partition] = []
        self.handover: dict[int, int] = {}

    async def __aenter__(self) -> Replay:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Check the range against what the topic keeps and seek every partition."""
        topic = self.settings.topic(self.source.role)
        try:
            tps = await self.readers.partitions(topic)
            if not tps:
                raise ReplayError(f"topic {topic} does not exist")
            if self.keys:  # only the partitions the symbols' keys map to
                held = {key_partition(key, len(tps)) for key in self.keys}
                tps = [tp for tp in tps if tp.partition in held]
            self.consumer = await self.readers.take()
            await self._seek(tps)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Give the consumer back (to a pool of its own: closed first, so it stops it)."""
        if self.own_readers:
            await self.readers.close()
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            await self.readers.give(consumer)

    async def _seek(self, tps: list[TopicPartition]) -> None:
        """Look up every offset the range needs at once, then seek each partition."""
        consumer = self.consumer
        assert consumer is not None
        consumer.assign(tps)
        tolerance = self.settings.future_tolerance_ms
        late = None if self.end is None else self.end // 1000 + self.settings.replay_lateness_ms

        async def offsets_at(ms: int | None) -> dict[TopicPartition, Any]:
            return {} if ms is None else await consumer.offsets_for_times(dict.fromkeys(tps, ms))

        begins, ends, firsts, starts, lates = await asyncio.gather(
            consumer.beginning_offsets(tps),
            consumer.end_offsets(tps),
            offsets_at(0),
            offsets_at(max(0, self.start // 1000 - tolerance)),
            offsets_at(late),
        )
        kept_since = [
            found.timestamp
            for tp, found in firsts.items()
            if found is not None and begins[tp] > self.after.get(tp.partition, 0)
        ]
        if kept_since and self.start // 1000 + tolerance < max(kept_since):
            raise ReplayError(
                f"start is older than the retention: records written before "
                f"{micros_to_iso(max(kept_since) * 1000)} were deleted"
            )
        stops = dict(ends)
        for tp, found in lates.items():
            if found is not None:
                stops[tp] = min(stops[tp], found.offset)
        froms = {
            tp: max(
                ends[tp] if starts[tp] is None else starts[tp].offset,
                self.after.get(tp.partition, 0),
            )
            for tp in tps
        }
        self._bound(froms, stops)
        for tp in tps:
            consumer.seek(tp, froms[tp])
            self.partitions.append(_Partition(tp, stops[tp], done=froms[tp] >= stops[tp]))
        self.handover = {tp.partition: ends[tp] for tp in tps}

    def _bound(self, froms: dict[TopicPartition, int], stops: dict[TopicPartition, int]) -> None:
        """Hold the read from ``froms`` to ``stops`` to ``scan_limit`` records: refuse it,
        or with ``truncate`` lower the stops to an equal share of it per partition."""
        spans = {tp: max(0, stops[tp] - first) for tp, first in froms.items()}
        if not self.scan_limit or sum(spans.values()) <= self.scan_limit:
            return
        if not self.truncate:
            raise ReplayError(
                f"the range spans {sum(spans.values())} records of its partitions, more than "
                f"the {self.scan_limit} one request may read; ask for a shorter range"
            )
        assert self.end is not None, "only a range with an end is cut"
        share = max(1, self.scan_limit // len(spans))
        for tp, span in spans.items():
            if span > share:
                stops[tp] = froms[tp] + share
                self.cut[tp.partition] = stops[tp]

    async def records(self) -> AsyncIterator[Replayed]:
        """Records in range in event-time order; then, without ``end``, live ones."""
        async for chunk in self.chunks(self.batch):
            for item in chunk:
                yield item

    async def chunks(self, size: int) -> AsyncIterator[list[Replayed]]:
        """What :meth:`records` yields, in lists of at most ``size``: the merge runs without
        awaiting between records, and a chunk is never empty. Live records come in the
        chunks the consumer fetched them in, never mixed with replayed ones."""
        heap: list[Head] = []
        for part in self.partitions:
            await self._push_next(heap, part)
        chunk: list[Replayed] = []
        while heap:
            item, part = heap[0][3:]
            chunk.append(item)
            following = self._next_of(part)
            if following is None:
                heapq.heappop(heap)
                await self._push_next(heap, part)
            else:
                heapq.heapreplace(
                    heap, (following.time, following.partition, following.offset, following, part)
                )
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        if self.end is None:
            async for chunk in self._follow(size):
                yield chunk

    async def _push_next(self, heap: list[Head], part: _Partition) -> None:
        item = self._next_of(part)
        while item is None and not part.done:
            await self._fill()
            item = self._next_of(part)
        if item is not None:
            heapq.heappush(heap, (item.time, item.partition, item.offset, item, part))

    def _next_of(self, part: _Partition) -> Replayed | None:
        """The partition's next fetched record in range, decoded; None once none is left."""
        fetched = part.fetched
        while fetched:
            item = self._take(fetched.popleft())
            if item is not None:
                return item
        return None

    async def _fill(self) -> None:
        """Take what the consumer has fetched for every partition running low.

        Taking all of it at once lets the consumer fetch the next records of every partition
        while these are merged (it fetches from a broker only once nothing it fetched before
        from there waits to be taken).
        """
        consumer = self.consumer
        assert consumer is not None
        low = [part for part in self.partitions if not part.done and len(part.fetched) < self.batch]
        batches = await consumer.getmany(*(part.tp for part in low), timeout_ms=FETCH_WAIT_MS)
        for part in low:
            fetched = batches.get(part.tp, [])
            if fetched and fetched[-1].offset >= part.stop:
                fetched = [raw for raw in fetched if raw.offset < part.stop]
            part.fetched.extend(fetched)
            if await consumer.position(part.tp) >= part.stop:
                part.done = True
                consumer.pause(part.tp)
        await asyncio.sleep(0)  # what was fetched is decoded after other tasks ran

    async def _follow(self, size: int) -> AsyncIterator[list[Replayed]]:
        consumer = self.consumer
        assert consumer is not None
        for part in self.partitions:
            consumer.seek(part.tp, part.stop)
        consumer.resume(*(part.tp for part in self.partitions))
        while True:
            batches = await consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=size)
            chunk = [
                item
                for tp in sorted(batches, key=lambda tp: tp.partition)
                for raw in batches[tp]
                for item in self._live(raw)
            ]
            if chunk:
                yield chunk
            elif not batches:
                await asyncio.sleep(0)

    def _live(self, raw: ConsumerRecord) -> list[Replayed]:
        """What a record read after the hand-over yields."""
        item = self._take(raw, live=True)
        return [] if item is None else [item]

    def _take(self, raw: ConsumerRecord, live: bool = False) -> Replayed | None:
        if raw.key is not None and raw.key not in self.keys:
            return None
        record = decode_or_skip(raw, self.source.record_type)
        if record is None:
            return None
        if self.source.keyed:
            if raw.key is None:
                skip(raw.topic, raw.partition, raw.offset, INVALID, "no key: no symbol")
                return None
            record = Keyed(raw.key.decode(errors="replace"), record)
        if record.symbol not in self.symbols:
            return None
        if self.timeframe is not None and record.timeframe != self.timeframe:
            return None
        event_time = getattr(record, self.source.time_field)
        if event_time < self.start or (self.end is not None and event_time > self.end):
            return None
        if event_time > LAST_MICROS:
            skip(raw.topic, raw.partition, raw.offset, INVALID, f"time {event_time} is no date")
            return None
        time = raw.timestamp * 1000 if self.source.by_write_time else event_time
        return Replayed(raw.partition, raw.offset, time, record, live)
