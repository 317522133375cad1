"""The consolidated books of a replayed range, folded from ``books.raw`` as the agent made them.

``books.consolidated`` is compacted, so it keeps no history to replay by time. A replay of
books folds the ``books.raw`` partitions of its symbols instead, each from its first retained
record in offset order, through the agent's own rule (:class:`BookSlots`), and keeps the
books of its symbols whose event time is in the range: the very books, ``seq`` included, that
the agent wrote for those offsets (``docs/invariants.md``).
"""

from __future__ import annotations

from domain.books.slots import BookSlots
from schemas.books import BookEvent, ConsolidatedBook


class RangeFold:
    """One partition's records in offset order in; its books of ``symbols`` from ``start`` to
    ``end`` (µs of event time, inclusive; None: no end) out."""

    def __init__(
        self, slots: BookSlots, symbols: frozenset[str], start: int, end: int | None
    ) -> None:
        self.slots = slots
        self.symbols = symbols
        self.start = start
        self.end = end

    def process(
        self, offset: int, timestamp_us: int, event: BookEvent | None
    ) -> list[ConsolidatedBook]:
        """Take the record at ``offset`` (``event`` None if it did not decode); the books in
        range its slot change flushes."""
        return [
            book
            for book in self.slots.process(offset, timestamp_us, event)
            if book.symbol in self.symbols
            and self.start <= book.ts_event
            and (self.end is None or book.ts_event <= self.end)
        ]
