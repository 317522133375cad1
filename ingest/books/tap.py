"""Book events from ccxt.pro: a tap on the messages ccxt decodes for one exchange.

ccxt.pro keeps its own book per symbol, but checks only part of the venues' continuity:
Binance gaps raise ``ChecksumError``, OKX gaps ``InvalidNonce``; Kraken's checksum is never
checked and Coinbase's ``sequence_num`` is ignored; OKX's price strings are dropped. So the
tap sees every message ccxt decodes (it wraps ``exchange.handle_message``, which the
exchange's WebSocket clients call with each decoded message) before ccxt handles it, reads
the book messages of the served symbols (``frames.py``) and checks each, as a
:class:`BookEvent`, with the venue's own rules in a :class:`VenueBook` of its own:

- an event the book applies is emitted; so is one it fails on (a gap, a checksum mismatch, a
  malformed level, a book too thin), so that every reader of the log fails on it too, with a
  DEGRADED ProviderStatus (``feed`` books, ``error_kind`` ``book_<outcome>``: the quote
  engine's scores ignore it) and the symbol in ``resync``:
  the caller gets a fresh snapshot (resubscribe, or reconnect) and clears it;
- deltas while the book waits for a snapshot, and stale ones, are dropped;
- a message the tap cannot read (a venue changed its format) might have updated any book, so
  every book waits for a snapshot (status ``book_unreadable``, every symbol in ``resync``);
  the events already emitted stay valid for their readers, which see no more deltas and drop
  the venue when its book goes stale (the freshness rule).

Venues that number nothing (Kraken; OKX before 2023) get the tap's own count per symbol as
update ids, continuing across snapshots. Coinbase numbers every message of a connection: a
symbol's delta gets ``first_update_id`` right after the symbol's previous message when no
message of the connection was lost in between, else its own number (a gap). Binance sends no
snapshot on the socket: ccxt fetches it by REST; pass ccxt's first book after a
(re)subscription to :meth:`BookTap.take_book`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from domain.books.continuity import rules_for
from domain.books.venue_book import DEFAULT_DEPTH, FAILURES, Outcome, VenueBook
from ingest.books.frames import READERS, BookFrame, book_event, ccxt_book
from schemas.books import SNAPSHOT, BookEvent
from schemas.records import BOOKS_FEED, ProviderStatus


class Chain:
    """The numbers a connection gave its messages: where the current unbroken run starts."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.unbroken_from = 0

    def see(self, number: int) -> None:
        """Note a message numbered ``number``."""
        if self.last is None or number != self.last + 1:
            self.unbroken_from = number
        self.last = number

    def first_id(self, previous: int | None, number: int) -> int:
        """The first update id of a message numbered ``number`` whose symbol's previous
        message was numbered ``previous``."""
        if previous is not None and previous + 1 >= self.unbroken_from:
            return previous + 1
        return number


class BookTap:
    """Book events and statuses of one ccxt.pro exchange's served symbols."""

    def __init__(
        self,
        exchange: Any,
        symbols: Mapping[str, str],
        *,
        clock: Callable[[], int],
        depth: int = DEFAULT_DEPTH,
        window: int | None = None,
    ) -> None:
        """``symbols`` maps ccxt's unified symbols to canonical ones; ``clock`` gives the
        ingest time; ``window`` is the depth subscribed to where the venue keeps a window of
        that many levels (Kraken), or the snapshot limit asked of ccxt (Binance)."""
        self.exchange = exchange
        self.provider = f"ccxt:{exchange.id}"
        self.reader = READERS[exchange.id]
        self.symbols = dict(symbols)
        self.clock = clock
        self.depth = depth
        self.window = window
        self.books: dict[str, VenueBook] = {}
        self.counts: dict[str, int] = {}
        self.previous: dict[str, int] = {}
        self.chains: dict[str, Chain] = {}
        self.resync: set[str] = set()
        self.pending: list[BookEvent | ProviderStatus] = []

    def install(self) -> None:
        """Wrap ``exchange.handle_message``; call before the first watch opens a client."""
        handle = self.exchange.handle_message

        def tapped(client: Any, message: Any) -> Any:
            self.see(client.url, message)
            return handle(client, message)

        self.exchange.handle_message = tapped

    def drain(self) -> list[BookEvent | ProviderStatus]:
        """The events and statuses since the last drain, in order."""
        pending, self.pending = self.pending, []
        return pending

    def see(self, url: str, message: Any) -> None:
        """Read one decoded message of the connection to ``url``."""
        if not isinstance(message, Mapping):
            return
        ts_ingest = self.clock()
        try:
            if "sequence_num" in message:
                self.chains.setdefault(url, Chain()).see(int(message["sequence_num"]))
            frames = self.reader(message, self)
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as error:
            self._unreadable(error, ts_ingest)
            return
        for frame in frames:
            symbol = self.symbols.get(frame.symbol)
            if symbol is not None:
                self._take(symbol, self._numbered(symbol, frame, url), ts_ingest)

    def take_book(self, symbol: str, book: Mapping[str, Any]) -> None:
        """Take ccxt's book of ``symbol`` as its snapshot, unless the tap's book is valid."""
        canonical = self.symbols[symbol]
        current = self.books.get(canonical)
        if current is None or not current.valid:
            frame = ccxt_book(symbol, book, self.window)
            self._take(canonical, self._numbered(canonical, frame, ""), self.clock())

    def symbol_of(self, market_id: str) -> str:
        """ccxt's unified spot symbol of a market id."""
        return str(self.exchange.safe_symbol(market_id, None, None, "spot"))

    def places(self, symbol: str) -> tuple[int, int]:
        """Decimals of price and amount from ccxt's market precision (tick sizes); 0 for a
        market ccxt does not know (its messages are not served anyway)."""
        market = (self.exchange.markets or {}).get(symbol)
        if market is None:
            return 0, 0
        precision = market["precision"]
        return _places(precision["price"]), _places(precision["amount"])

    def _unreadable(self, error: Exception, ts_ingest: int) -> None:
        """A message the tap cannot read may have updated any book: all wait for a snapshot."""
        self.books.clear()
        self.resync.update(self.symbols.values())
        self.pending.append(
            ProviderStatus(
                self.provider,
                ts_ingest,
                "DEGRADED",
                error_kind="book_unreadable",
                message=f"an order book message could not be read: {error!r}"[:200],
                feed=BOOKS_FEED,
            )
        )

    def _numbered(self, symbol: str, frame: BookFrame, url: str) -> BookFrame:
        if not frame.numbered:
            count = self.counts[symbol] = self.counts.get(symbol, 0) + 1
            return dataclasses.replace(
                frame, first_update_id=count, last_update_id=count, prev_update_id=count - 1
            )
        chain = self.chains.get(url)
        if chain is not None and frame.last_update_id is not None:
            first = chain.first_id(self.previous.get(symbol), frame.last_update_id)
            self.previous[symbol] = frame.last_update_id
            return dataclasses.replace(frame, first_update_id=first)
        return frame

    def _take(self, symbol: str, frame: BookFrame, ts_ingest: int) -> None:
        event = book_event(frame, symbol, self.provider, ts_ingest)
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = VenueBook(rules_for(self.provider), self.depth)
        result = book.apply(event)
        if result.outcome in (Outcome.WAITING, Outcome.STALE):
            return
        self.pending.append(event)
        if result.outcome in FAILURES:
            self.resync.add(symbol)
            self.pending.append(
                ProviderStatus(
                    self.provider,
                    ts_ingest,
                    "DEGRADED",
                    error_kind=f"book_{result.outcome}",
                    message=f"{symbol}: {result.detail}",
                    feed=BOOKS_FEED,
                )
            )
        elif event.kind == SNAPSHOT:
            self.resync.discard(symbol)


def _places(tick: Any) -> int:
    exponent = Decimal(repr(float(tick))).normalize().as_tuple().exponent
    return max(0, -int(exponent))
