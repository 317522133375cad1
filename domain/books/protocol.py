"""The gateway's order book stream, pure: a snapshot, then deltas with ``seq`` and a checksum.

A :class:`BookPublisher` serves one subscription (one symbol, one venue or the consolidated
book, one depth of 10, 25 or 50). Given the current book whenever the gateway wants to send
(each ``interval_ms``: the conflation), it returns the message that brings the client from
the last book it *sent* to this one, so conflating any number of books never breaks the
client's copy:

- the first message is a ``snapshot`` of the top ``depth`` levels per side; after it,
  ``delta`` messages carry each level whose price, size or per-venue sizes changed, in full,
  and a size of zero for each level that left the book; nothing is sent while the book is
  unchanged;
- after each message the client keeps the best ``depth`` levels per side, as Kraken's
  clients do: a level pushed out of the top ``depth`` by better ones is not sent as a zero;
- ``seq`` counts the stream's messages from 1: a client that sees a gap has lost one;
- ``checksum`` is Kraken's CRC32 (``checksums.kraken_checksum``), exactly: over the top 10
  levels per side of the book after the message, as the texts were sent: asks best first,
  then bids best first, each price and size with the point removed and leading zeros
  stripped (``seq`` catches a lost message at any depth);
- prices and sizes are sent with a fixed number of decimals per stream (the most any of its
  prices, respectively sizes, has needed), as Kraken writes them at the pair's precision, so
  the digit strings are unambiguous; when a book needs more decimals the next message is a
  snapshot written with the new count;
- a consolidated level is ``[price, size, [size of each venue]]``, the sizes in the order of
  the ``venues`` of the last snapshot (an empty string where a venue has none): a change in
  the fresh venues is sent as a snapshot; every consolidated message carries the ``crossed``
  prices of each side.

:class:`ClientBook` is the client's side: it applies the messages and checks ``seq`` and the
checksum, the reference for the examples.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.books.checksums import KRAKEN_LEVELS, kraken_checksum, kraken_digits
from domain.books.levels import decimals, fixed, plain
from domain.books.venue_book import VenueBook
from schemas.books import ConsolidatedBook
from schemas.times import check_micros, micros_to_iso

DEPTHS = (10, 25, 50)
CONSOLIDATED = "consolidated"

ViewLevel = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class BookView:
    """A book as the stream shows it: levels ``(price, size, sizes)`` in plain text, best
    first, ``sizes`` being each of ``venues``' size ("" for none) in a consolidated book."""

    symbol: str
    venue: str
    ts_event: int
    bids: tuple[ViewLevel, ...]
    asks: tuple[ViewLevel, ...]
    venues: tuple[str, ...] = ()
    crossed_bids: tuple[str, ...] = ()
    crossed_asks: tuple[str, ...] = ()


def check_consolidated(book: ConsolidatedBook) -> None:
    """Raise ValueError unless clients can be shown ``book``: a time a date can show, levels
    of a finite price and size, crossed levels among its own."""
    check_micros(book.ts_event)
    for levels, crossed in ((book.bids, book.crossed_bids), (book.asks, book.crossed_asks)):
        for level in levels:
            if len(level) < 2 or not all(math.isfinite(float(value)) for value in level[:2]):
                raise ValueError(f"level {level!r} is no price and size")
        if any(not 0 <= index < len(levels) for index in crossed):
            raise ValueError(f"crossed levels {crossed} of {len(levels)}")


def consolidated_view(book: ConsolidatedBook) -> BookView:
    """The view of a consolidated book record."""

    def levels(rows: list[list[str]]) -> tuple[ViewLevel, ...]:
        return tuple((row[0], row[1], tuple(row[2:])) for row in rows)

    return BookView(
        book.symbol,
        CONSOLIDATED,
        book.ts_event,
        levels(book.bids),
        levels(book.asks),
        tuple(book.venues),
        tuple(book.bids[i][0] for i in book.crossed_bids),
        tuple(book.asks[i][0] for i in book.crossed_asks),
    )


def venue_view(symbol: str, venue: str, book: VenueBook, depth: int) -> BookView:
    """The view of one venue's book (empty while it is invalid)."""
    bids, asks = book.top(depth)
    return BookView(
        symbol,
        venue,
        book.ts_event,
        tuple((plain(price), plain(size), ()) for price, size in bids),
        tuple((plain(price), plain(size), ()) for price, size in asks),
    )


class BookPublisher:
    """The messages of one order book subscription; see the module docstring."""

    def __init__(self, depth: int) -> None:
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {', '.join(map(str, DEPTHS))}, got {depth}")
        self.depth = depth
        self.seq = 0
        self.places = (0, 0)
        self.sent: tuple[dict[str, ViewLevel], dict[str, ViewLevel]] | None = None
        self.digits: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self.venues: tuple[str, ...] = ()
        self.crossed: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    def publish(self, view: BookView) -> dict[str, Any] | None:
        """The message from the last book sent to ``view``, or None when nothing changed."""
        bids, asks = view.bids[: self.depth], view.asks[: self.depth]
        crossed = (view.crossed_bids, view.crossed_asks)
        places = self.places
        if self.sent is not None:
            changed = (
                _changes(self.sent[0], bids, self.depth, reverse=True),
                _changes(self.sent[1], asks, self.depth, reverse=False),
            )
            if not changed[0] and not changed[1] and crossed == self.crossed:
                return None
            places = _places((*changed[0], *changed[1]), places)
        if self.sent is None or places != self.places or view.venues != self.venues:
            places = _places((*bids, *asks), places)
            action, changed = "snapshot", (list(bids), list(asks))
            self.digits = ({}, {})
        else:
            action = "delta"
        rows = (
            [_wire(level, places) for level in changed[0]],
            [_wire(level, places) for level in changed[1]],
        )
        self.digits = (
            _digits(self.digits[0], bids, changed[0], rows[0]),
            _digits(self.digits[1], asks, changed[1], rows[1]),
        )
        checksum = zlib.crc32(
            "".join(
                [
                    *(self.digits[1][level[0]] for level in asks[:KRAKEN_LEVELS]),
                    *(self.digits[0][level[0]] for level in bids[:KRAKEN_LEVELS]),
                ]
            ).encode()
        )
        self.sent = ({level[0]: level for level in bids}, {level[0]: level for level in asks})
        self.places, self.venues, self.crossed = places, view.venues, crossed
        self.seq += 1
        message: dict[str, Any] = {
            "action": action,
            "symbol": view.symbol,
            "venue": view.venue,
            "depth": self.depth,
            "seq": self.seq,
            "timestamp": micros_to_iso(view.ts_event),
            "checksum": checksum,
            "bids": rows[0],
            "asks": rows[1],
        }
        if view.venue == CONSOLIDATED:
            if action == "snapshot":
                message["venues"] = list(view.venues)
            message["crossed"] = {
                "bids": [fixed(p, places[0]) for p in view.crossed_bids],
                "asks": [fixed(p, places[0]) for p in view.crossed_asks],
            }
        return message


def _digits(
    previous: Mapping[str, str],
    levels: Sequence[ViewLevel],
    changed: Sequence[ViewLevel],
    rows: Sequence[list[Any]],
) -> dict[str, str]:
    """Each level's part of the checksum, by price: those of the changed levels from their
    rows as sent, the others as before."""
    fresh = {level[0]: kraken_digits(row) for level, row in zip(changed, rows, strict=True)}
    return {level[0]: fresh.get(level[0]) or previous[level[0]] for level in levels}


def _places(levels: Iterable[ViewLevel], current: tuple[int, int]) -> tuple[int, int]:
    """Decimals for prices and sizes: ``current``, or more if a level needs them."""
    price_places, size_places = current
    for price, size, sizes in levels:
        price_places = max(price_places, decimals(price))
        size_places = max(size_places, decimals(size), *map(decimals, sizes))
    return price_places, size_places


def _changes(
    sent: Mapping[str, ViewLevel], levels: Sequence[ViewLevel], depth: int, reverse: bool
) -> list[ViewLevel]:
    """The levels of ``levels`` that differ from ``sent``, and a zero size for each price of
    ``sent`` no longer there that the client's truncation to ``depth`` would not drop, best
    first."""
    now = {level[0]: level for level in levels}
    changed = [level for level in levels if sent.get(level[0]) != level]
    sign = -1.0 if reverse else 1.0
    worst = sign * float(levels[-1][0]) if len(levels) >= depth else None
    changed.extend(
        (price, "0", ())
        for price in sent
        if price not in now and (worst is None or sign * float(price) < worst)
    )
    changed.sort(key=lambda level: sign * float(level[0]))
    return changed


def _wire(level: ViewLevel, places: tuple[int, int]) -> list[Any]:
    price, size, sizes = level
    row: list[Any] = [fixed(price, places[0]), fixed(size, places[1])]
    if sizes:
        row.append([fixed(amount, places[1]) if amount else "" for amount in sizes])
    return row


class BookDesync(ValueError):
    """A message the client's book cannot follow: a ``seq`` gap or a checksum mismatch."""


class ClientBook:
    """A client's copy of one order book stream, rebuilt from its messages."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.depth = 0
        self.venues: list[str] = []
        self.bids: dict[str, list[Any]] = {}
        self.asks: dict[str, list[Any]] = {}

    def apply(self, message: Mapping[str, Any]) -> None:
        """Apply one message; raises BookDesync on a seq gap or a checksum mismatch."""
        if message["action"] == "snapshot":
            self.bids, self.asks = {}, {}
            self.venues = list(message.get("venues", []))
        elif self.seq is None or message["seq"] != self.seq + 1:
            raise BookDesync(f"seq {message['seq']} does not follow {self.seq}")
        self.seq = message["seq"]
        self.depth = message["depth"]
        for side, levels in ((self.bids, message["bids"]), (self.asks, message["asks"])):
            for level in levels:
                if float(level[1]) == 0:
                    side.pop(level[0], None)
                else:
                    side[level[0]] = level
        bids, asks = self.levels()
        for side, ordered in ((self.bids, bids), (self.asks, asks)):
            for level in ordered[self.depth :]:
                del side[level[0]]
        bids, asks = bids[: self.depth], asks[: self.depth]
        if kraken_checksum(asks, bids) != message["checksum"]:
            raise BookDesync(f"checksum mismatch at seq {self.seq}")

    def levels(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """Bids and asks, best first."""
        return (
            sorted(self.bids.values(), key=lambda level: -float(level[0])),
            sorted(self.asks.values(), key=lambda level: float(level[0])),
        )
