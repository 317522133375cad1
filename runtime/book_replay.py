"""Replay of consolidated order books: ``books.raw`` folded through the agent's rule.

``books.consolidated`` is compacted, so a replay of books reads the ``books.raw`` partitions
of its symbols from their first retained record to the log end captured when it opened, folds
each through :class:`domain.books.replay.RangeFold` (the agent's :class:`BookSlots`) and
yields the books of its symbols whose event time is in the range, merged across partitions
by event time like :class:`runtime.replay.Replay` (whose reading and merging it reuses). Each
book is the one the agent wrote for the same offsets, ``seq`` included. Its work up to the
captured end is bounded by what ``books.raw`` retains (``FIML_BOOKS_RETENTION_HOURS``) and by
``scan_limit``: partitions holding more records than that are refused, never cut. Without
``end`` each partition's fold goes on past that end with the records written since (the
hand-over): the books it flushes, the agent's own, come live.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.books.replay import RangeFold
from domain.books.slots import BookSlots, check_event
from runtime.intake import decode_or_skip
from runtime.readers import ReaderPool
from runtime.replay import Replay, Replayed, _Partition
from runtime.replay_request import ReplayError, ReplayRequest, StreamSource
from runtime.settings import Settings
from schemas.books import BookEvent
from schemas.times import micros_to_iso
from schemas.topics import TopicRole

BOOKS = StreamSource(TopicRole.BOOKS, BookEvent, "ts_event")


def book_event(raw: ConsumerRecord) -> BookEvent | None:
    """The book event of ``raw``, or None (skipped and counted) as the agent decides."""
    return decode_or_skip(raw, BookEvent, check_event)


def book_slots(settings: Settings) -> BookSlots:
    """The agent's rule for one partition, as ``settings`` configure it."""
    return BookSlots(
        slot_us=settings.book_snapshot_ms * 1000,
        depth=settings.book_depth,
        freshness_us=settings.freshness_ms * 1000,
        future_tolerance_us=settings.future_tolerance_ms * 1000,
    )


class BookReplay(Replay):
    """The consolidated books of one request of stream ``books`` (see the module docstring)."""

    streams: ClassVar[dict[str, StreamSource]] = {"books": BOOKS}

    def __init__(
        self,
        settings: Settings,
        request: ReplayRequest,
        *,
        readers: ReaderPool | None = None,
        scan_limit: int = 0,
    ) -> None:
        super().__init__(settings, request, readers=readers, scan_limit=scan_limit)
        self.folds: dict[int, RangeFold] = {}
        self.pending: dict[int, deque[Replayed]] = {}
        self.times: dict[int, int] = {}

    async def _seek(self, tps: list[TopicPartition]) -> None:
        """Seek every partition to its first retained record; refuse a ``start`` before it."""
        consumer = self.consumer
        assert consumer is not None
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        firsts = await consumer.offsets_for_times(dict.fromkeys(tps, 0))
        tolerance = self.settings.future_tolerance_ms
        kept_since = [f.timestamp for tp, f in firsts.items() if f is not None and begins[tp] > 0]
        if kept_since and self.start // 1000 + tolerance < max(kept_since):
            raise ReplayError(
                f"start is older than the retention of books.raw: records written before "
                f"{micros_to_iso(max(kept_since) * 1000)} were deleted"
            )
        self._bound(begins, ends)
        for tp in tps:
            consumer.seek(tp, begins[tp])
            self.partitions.append(_Partition(tp, ends[tp], done=begins[tp] >= ends[tp]))
            slots = book_slots(self.settings)
            self.folds[tp.partition] = RangeFold(slots, self.symbols, self.start, self.end)
            self.pending[tp.partition] = deque()
            self.times[tp.partition] = 0

    def _next_of(self, part: _Partition) -> Replayed | None:
        """The partition's next book in range, folding its fetched records as far as needed."""
        partition = part.tp.partition
        pending, fold = self.pending[partition], self.folds[partition]
        while not pending and part.fetched:
            raw = part.fetched.popleft()
            for book in fold.process(raw.offset, raw.timestamp * 1000, book_event(raw)):
                # the merge's time never goes back within a partition
                time = self.times[partition] = max(self.times[partition], book.ts_event)
                pending.append(Replayed(partition, raw.offset, time, book))
        return pending.popleft() if pending else None

    def _live(self, raw: ConsumerRecord) -> list[Replayed]:
        """After the hand-over: the books the partition's fold flushes with ``raw``."""
        fold = self.folds[raw.partition]
        return [
            Replayed(raw.partition, raw.offset, book.ts_event, book, live=True)
            for book in fold.process(raw.offset, raw.timestamp * 1000, book_event(raw))
        ]
