"""Typed records of order books, one per Avro schema (book_event.avsc, consolidated_book.avsc).

Prices and sizes are plain decimal text (``"63921.7"``, ``"0.00005100"``): exact, and the
venues' checksums are computed over the text they sent. Times are integers, microseconds
since the Unix epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SNAPSHOT = "SNAPSHOT"
DELTA = "DELTA"


@dataclass(frozen=True, slots=True)
class BookEvent:
    """One order book message of one venue: a full SNAPSHOT or a DELTA of changed levels."""

    symbol: str
    provider: str
    kind: str
    ts_event: int
    ts_ingest: int
    bids: list[list[str]]
    asks: list[list[str]]
    first_update_id: int | None = None
    last_update_id: int | None = None
    prev_update_id: int | None = None
    checksum: int | None = None
    depth: int | None = None


@dataclass(frozen=True, slots=True)
class ConsolidatedBook:
    """The book of one symbol across its fresh venues, with each venue's size per level."""

    symbol: str
    ts_event: int
    seq: int
    venues: list[str]
    bids: list[list[str]]
    asks: list[list[str]]
    crossed_bids: list[int] = field(default_factory=list)
    crossed_asks: list[int] = field(default_factory=list)
