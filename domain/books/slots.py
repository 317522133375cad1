"""Consolidated books of one partition of book events, flushed once per Kafka-time slot.

A pure function of the partition's records in offset order (offset, Kafka time, event): each
event goes to its symbol's :class:`SymbolBooks`; the first record whose Kafka time is in a
later slot (``slot_us`` long, counted from the epoch) than the record before it first
*flushes*: one :class:`ConsolidatedBook` for each symbol an event changed since the last
flush (applied, or failed and so emptied its venue's book), in symbol order, stamped with
``seq`` = the offset of the last record before the flush. Stale and waiting deltas change
nothing. So the output is as deterministic as candles: the same records give the same
books, whether the worker ran once, restarted, or ``fiml rebuild`` replayed them.
"""

from __future__ import annotations

from domain.books.consolidated import SymbolBooks
from domain.books.venue_book import Outcome
from schemas.books import BookEvent, ConsolidatedBook
from schemas.times import check_micros

UNCHANGED = frozenset({Outcome.STALE, Outcome.WAITING})


def check_event(event: BookEvent) -> None:
    """Raise ValueError unless ``event``'s times are times a date can show: one that is not
    would hold its symbol's event time past every later event's."""
    check_micros(event.ts_event)
    check_micros(event.ts_ingest)


class BookSlots:
    """The books of one partition and the consolidated books it flushes."""

    def __init__(
        self, *, slot_us: int, depth: int, freshness_us: int, future_tolerance_us: int
    ) -> None:
        self.slot_us = slot_us
        self.depth = depth
        self.freshness_us = freshness_us
        self.future_tolerance_us = future_tolerance_us
        self.symbols: dict[str, SymbolBooks] = {}
        self.changed: set[str] = set()
        self.slot: int | None = None
        self.last_offset: int | None = None
        self.next_offset: int | None = None

    def process(
        self, offset: int, timestamp_us: int, event: BookEvent | None
    ) -> list[ConsolidatedBook]:
        """Take the record at ``offset`` (``event`` None for one that did not decode); the
        consolidated books its slot change flushes."""
        slot = timestamp_us // self.slot_us
        flushed: list[ConsolidatedBook] = []
        if self.slot is not None and slot > self.slot:
            flushed = self.flush()
        if self.slot is None or slot > self.slot:
            self.slot = slot
        if event is not None:
            books = self.symbols.get(event.symbol)
            if books is None:
                books = self.symbols[event.symbol] = SymbolBooks(
                    event.symbol,
                    depth=self.depth,
                    freshness_us=self.freshness_us,
                    future_tolerance_us=self.future_tolerance_us,
                )
            if books.apply(event).outcome not in UNCHANGED:
                self.changed.add(event.symbol)
        self.last_offset = offset
        self.next_offset = offset + 1
        return flushed

    def flush(self) -> list[ConsolidatedBook]:
        """The consolidated book of every symbol changed since the last flush."""
        seq = -1 if self.last_offset is None else self.last_offset
        books = [self.symbols[symbol].consolidated(seq) for symbol in sorted(self.changed)]
        self.changed.clear()
        return books
