"""The consolidated book of one symbol: its fresh venues' books merged level by level.

Rules, per symbol, as a pure function of its book events in log order:

- Each venue's events go to its :class:`VenueBook` (by the venue's rules, ``continuity.py``).
- The symbol's **event time** is the newest event time of any applied event, an event time
  counted at most ``future_tolerance_us`` past its ingest time (so one bad clock cannot age
  every other venue out). A venue is **fresh** while its book is valid and its newest applied
  event is at most ``freshness_us`` behind the symbol's event time, the quote engine's rule.
- The **consolidated book** merges the fresh venues' levels by price: each level has the
  price, the total size (exact decimal sum) and each venue's size. Prices are written plain
  (no leading or trailing zeros) whatever text the venue used.
- A side stops at the nearest **edge** of its venues (``VenueBook.edge``): past it a venue
  may have levels the book does not know, so a level there could miss that venue's size.
- A bid level is **crossed** when a venue quoting it is above another venue's best ask; an
  ask level when a venue quoting it is below another venue's best bid. Crossed levels are
  kept and flagged: an arbitrage signal, not an error.

Memory is bounded: at most ``depth`` (or the checksum's levels) per side per venue.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from decimal import Decimal

from domain.books.continuity import rules_for
from domain.books.levels import Side, decimal_plain, plain
from domain.books.venue_book import DEFAULT_DEPTH, Outcome, Result, VenueBook
from schemas.books import BookEvent, ConsolidatedBook

DEFAULT_FRESHNESS_US = 2_000_000
DEFAULT_FUTURE_TOLERANCE_US = 1_000_000
ZERO = Decimal(0)

Bests = list[tuple[float, int]]


class SymbolBooks:
    """The venue books of one symbol and the consolidated book they make."""

    def __init__(
        self,
        symbol: str,
        *,
        depth: int = DEFAULT_DEPTH,
        freshness_us: int = DEFAULT_FRESHNESS_US,
        future_tolerance_us: int = DEFAULT_FUTURE_TOLERANCE_US,
    ) -> None:
        self.symbol = symbol
        self.depth = depth
        self.freshness_us = freshness_us
        self.future_tolerance_us = future_tolerance_us
        self.venues: dict[str, VenueBook] = {}
        self.seen: dict[str, int] = {}
        self.watermark: int | None = None

    def apply(self, event: BookEvent) -> Result:
        """Apply one book event of this symbol to its venue's book."""
        book = self.venues.get(event.provider)
        if book is None:
            book = self.venues[event.provider] = VenueBook(rules_for(event.provider), self.depth)
            self.venues = dict(sorted(self.venues.items()))
        result = book.apply(event)
        if result.outcome is Outcome.APPLIED:
            moment = min(event.ts_event, event.ts_ingest + self.future_tolerance_us)
            self.seen[event.provider] = max(self.seen.get(event.provider, moment), moment)
            if self.watermark is None or moment > self.watermark:
                self.watermark = moment
        return result

    def fresh(self) -> list[str]:
        """The venues whose books are valid and fresh, sorted by name."""
        if self.watermark is None:
            return []
        horizon = self.watermark - self.freshness_us
        return [
            name for name, book in self.venues.items() if book.valid and self.seen[name] >= horizon
        ]

    def consolidated(self, seq: int) -> ConsolidatedBook:
        """The consolidated book now, stamped with ``seq`` (the caller's input position)."""
        names = self.fresh()
        books = [self.venues[name] for name in names]
        bids = _merge([(book, book.bids) for book in books], self.depth)
        asks = _merge([(book, book.asks) for book in books], self.depth)
        best_asks = sorted(
            (book.asks.keys[0], index) for index, book in enumerate(books) if book.asks.keys
        )
        best_bids = sorted(
            (book.bids.keys[0], index) for index, book in enumerate(books) if book.bids.keys
        )
        return ConsolidatedBook(
            symbol=self.symbol,
            ts_event=self.watermark or 0,
            seq=seq,
            venues=names,
            bids=bids,
            asks=asks,
            crossed_bids=_crossed(bids, best_asks, 1.0),
            crossed_asks=_crossed(asks, best_bids, -1.0),
        )


def _merge(sides: list[tuple[VenueBook, Side]], depth: int) -> list[list[str]]:
    """Levels ``[price, total, size per venue...]`` of the sides merged, best first."""
    edges = [edge for book, side in sides if (edge := book.edge(side)) is not None]
    cut = min(edges) if edges else None
    quotes: dict[float, list[tuple[int, str]]] = {}
    for index, (_, side) in enumerate(sides):
        keys = side.keys[:depth]
        if cut is not None:
            keys = keys[: bisect_right(keys, cut)]
        levels = side.levels
        for key in keys:
            quote = (index, levels[key][1])
            found = quotes.get(key)
            if found is None:
                quotes[key] = [quote]
            else:
                found.append(quote)
    width = len(sides)
    return [
        list(_row(sides[quotes[key][0][0]][1].levels[key][0], tuple(quotes[key]), width))
        for key in sorted(quotes)[:depth]
    ]


@functools.lru_cache(maxsize=16_384)
def _row(price: str, quotes: tuple[tuple[int, str], ...], width: int) -> tuple[str, ...]:
    """One level: price, total, each venue's size (``quotes``: venue index and size)."""
    sizes = [""] * width
    for index, size in quotes:
        sizes[index] = plain(size)
    if len(quotes) == 1:
        total = sizes[quotes[0][0]]
    else:
        total = decimal_plain(sum((Decimal(size) for _, size in quotes), ZERO))
    return (plain(price), total, *sizes)


def _crossed(levels: list[list[str]], opposite: Bests, sign: float) -> list[int]:
    """Indices of ``levels`` quoted by a venue beyond another venue's best opposite price.

    ``opposite`` holds each venue's best opposite key (the ask price, or minus the bid price)
    with its index, best first; ``sign`` turns a level's price into that key space (1 for bid
    levels, -1 for ask levels): a bid at ``p`` is crossed by an ask below ``p``, an ask at
    ``q`` by a bid above ``q``, that is by a key below ``sign * price``.
    """
    if not opposite:
        return []
    crossed = []
    for position, level in enumerate(levels):
        bound = sign * float(level[0])
        if opposite[0][0] >= bound:
            break
        venues = [index for index, size in enumerate(level[2:]) if size]
        if any(_beyond(opposite, venue, bound) for venue in venues):
            crossed.append(position)
    return crossed


def _beyond(opposite: Bests, venue: int, bound: float) -> bool:
    """Whether a venue other than ``venue`` has its best opposite key below ``bound``."""
    for key, index in opposite[:2]:
        if index != venue:
            return key < bound
    return False
