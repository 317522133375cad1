"""ccxt.pro order books of one exchange as book events: one ``watch_order_book`` per served
symbol, read through a :class:`BookTap` (``tap.py``) that checks each venue message.

A symbol whose book failed (a gap, a checksum mismatch, ccxt's own ``ChecksumError`` or
``InvalidNonce``) needs a fresh snapshot: where ccxt can unsubscribe one symbol
(``un_watch_order_book``: Binance, OKX, Coinbase) it does, and the next watch subscribes
again and gets one; elsewhere (Kraken) :class:`BookResync` ends the session, whose retry
connects afresh. A polled exchange's books are ``fetch_order_book`` snapshots
(:func:`fetch_books`), one per symbol and poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import ccxt

from ingest.books.frames import READERS, book_event, ccxt_book
from ingest.books.tap import BookTap
from ingest.providers import Emit
from runtime.clock import now_micros
from schemas.books import BookEvent

# Kraken: the window subscribed to (10, 25, 100, 500 or 1000); Binance: the REST snapshot's
# limit. Other venues send their whole (or fixed) book.
BOOK_LIMITS = {"kraken": 100, "binance": 100}
# Venues that send no snapshot on the socket: ccxt's first book after a subscription is the
# REST snapshot it fetched. Elsewhere ccxt's book is only what the messages made of it (after
# a failure, the very book that failed), so it is never taken as a snapshot.
REST_SNAPSHOTS = frozenset({"binance"})
REST_LIMIT = 100


class BookResync(ccxt.NetworkError):  # type: ignore[misc]  # ccxt has no type hints
    """A book needs a fresh snapshot on a venue where ccxt cannot resubscribe one symbol."""


def book_tap(exchange: Any, depth: int) -> BookTap | None:
    """A tap installed on ``exchange`` if its book messages can be read, else None; install
    it before the first watch opens a connection."""
    if exchange.id not in READERS or not exchange.has.get("watchOrderBook"):
        return None
    tap = BookTap(exchange, {}, clock=now_micros, depth=depth, window=BOOK_LIMITS.get(exchange.id))
    tap.install()
    return tap


async def watch_books(
    exchange: Any, tap: BookTap, served: Mapping[str, str], emit: Emit, seen: Callable[[], None]
) -> None:
    """Watch the book of every served symbol (ccxt's symbol to the canonical one) until
    cancelled, emitting what the tap reads; ``seen`` is called at each update."""
    tap.symbols = dict(served)
    tap.books.clear()
    tap.resync.clear()
    await asyncio.gather(*(_watch(exchange, tap, symbol, emit, seen) for symbol in served))


async def _watch(
    exchange: Any, tap: BookTap, symbol: str, emit: Emit, seen: Callable[[], None]
) -> None:
    canonical = tap.symbols[symbol]
    while True:
        try:
            book = await exchange.watch_order_book(symbol, BOOK_LIMITS.get(exchange.id))
            if exchange.id in REST_SNAPSHOTS:
                tap.take_book(symbol, book)
        except (ccxt.ChecksumError, ccxt.InvalidNonce):
            tap.resync.add(canonical)
        seen()
        await emit(tap.drain())
        if canonical in tap.resync:
            if not exchange.has.get("unWatchOrderBook"):
                raise BookResync(f"the {symbol} book of {exchange.id} needs a fresh snapshot")
            await exchange.un_watch_order_book(symbol)


async def fetch_books(
    exchange: Any, served: Mapping[str, str], call: Callable[[Awaitable[Any]], Awaitable[Any]]
) -> list[BookEvent]:
    """A snapshot of each served symbol's book by REST (``REST_LIMIT`` levels a side), each
    request through ``call`` (the provider's timeout)."""
    if not exchange.has.get("fetchOrderBook"):
        return []
    events = []
    for symbol, canonical in served.items():
        book = await call(exchange.fetch_order_book(symbol, REST_LIMIT))
        frame = ccxt_book(symbol, book, REST_LIMIT)
        events.append(book_event(frame, canonical, f"ccxt:{exchange.id}", now_micros()))
    return events
