"""Order books of the synthetic venues: a snapshot, then deltas, around the synthetic prices.

Each venue shows, per symbol, ``depth`` levels a side, one tick apart, around its own view of
the price (the true price off by a constant drawn from the venue's noise, so venues' books
can cross) with its own spread and sizes. Its first message per symbol is a snapshot; each later
:meth:`SyntheticBooks.advance` sends a delta of the levels whose size changed, the new levels
and, with a size of 0, the levels that left the book; with ``snapshot_every_us``, a snapshot
again once that long after the last one (so a reader of a log whose start was deleted by
retention gets a book). Update ids count per venue and symbol
(``NEXT`` rule). Everything is a pure function of the seed and the sequence of calls.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ingest.venues import DEFAULT_VENUES, Venue
from schemas.books import DELTA, SNAPSHOT, BookEvent

RESIZE_PROBABILITY = 0.05
TICK_DIGITS = 5


@dataclass
class _Book:
    offset: float
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    seq: int = 1
    snapshot_us: int = 0


def book_tick(price: float) -> Decimal:
    """The synthetic books' tick: about a hundred-thousandth of the price, a power of ten."""
    return Decimal(1).scaleb(math.floor(math.log10(price)) - TICK_DIGITS + 1)


class SyntheticBooks:
    """The synthetic venues' order books for the symbols whose prices it is given."""

    def __init__(
        self,
        venues: Iterable[Venue] = DEFAULT_VENUES,
        *,
        seed: int,
        depth: int = 50,
        snapshot_every_us: int | None = None,
    ) -> None:
        self.venues = tuple(venues)
        self.snapshot_every_us = snapshot_every_us
        self.random = random.Random(seed)
        self.depth = depth
        self.books: dict[tuple[str, str], _Book] = {}

    def advance(self, now_us: int, prices: Mapping[str, float]) -> list[BookEvent]:
        """Each venue's book message for each symbol of ``prices`` (the true prices) at
        ``now_us``; symbols in sorted order."""
        events = []
        for venue in self.venues:
            for symbol in sorted(prices):
                event = self._message(venue, symbol, prices[symbol], now_us)
                if event is not None:
                    events.append(event)
        if len(self.books) > len(self.venues) * len(prices):  # symbols no longer simulated
            self.books = {key: book for key, book in self.books.items() if key[1] in prices}
        return events

    def _message(self, venue: Venue, symbol: str, price: float, now_us: int) -> BookEvent | None:
        book = self.books.get((venue.name, symbol))
        offset = self.random.gauss(0.0, venue.noise_bps) if book is None else book.offset
        view = price * (1 + offset / 10_000)
        tick = book_tick(price)
        half_spread = max(1, round(view * venue.spread_bps / 20_000 / float(tick)))
        middle = round(view / float(tick))
        scale = 1.0 + self.venues.index(venue)
        sides = (
            self._side(book.bids if book else {}, middle - half_spread, -1, tick, scale),
            self._side(book.asks if book else {}, middle + half_spread, 1, tick, scale),
        )
        ts_event = now_us - int(venue.latency_ms * 1000)
        every = self.snapshot_every_us
        if book is None or (every is not None and now_us - book.snapshot_us >= every):
            seq = 1 if book is None else book.seq + 1
            book = self.books[venue.name, symbol] = _Book(offset, *sides, seq, now_us)
            return BookEvent(
                symbol,
                venue.name,
                SNAPSHOT,
                ts_event,
                now_us,
                _levels(book.bids),
                _levels(book.asks),
                last_update_id=seq,
            )
        changes = (_diff(book.bids, sides[0]), _diff(book.asks, sides[1]))
        if not changes[0] and not changes[1]:
            return None
        book.bids, book.asks = sides
        book.seq += 1
        return BookEvent(
            symbol,
            venue.name,
            DELTA,
            ts_event,
            now_us,
            *changes,
            first_update_id=book.seq,
            last_update_id=book.seq,
        )

    def _side(
        self, previous: dict[str, str], best: int, step: int, tick: Decimal, scale: float
    ) -> dict[str, str]:
        """``depth`` levels from tick ``best`` outwards, keeping most sizes of ``previous``."""
        rng = self.random
        side = {}
        for index in range(self.depth):
            ticks = best + step * index
            if ticks <= 0:
                break
            price = format(tick * ticks, "f")
            size = previous.get(price)
            if size is None or rng.random() < RESIZE_PROBABILITY:
                size = f"{rng.uniform(0.01, 5.0) * scale:.4f}"
            side[price] = size
        return side


def _levels(side: Mapping[str, str]) -> list[list[str]]:
    return [[price, size] for price, size in side.items()]


def _diff(before: Mapping[str, str], after: Mapping[str, str]) -> list[list[str]]:
    changed = [[price, size] for price, size in after.items() if before.get(price) != size]
    changed.extend([price, "0"] for price in before if price not in after)
    return changed
