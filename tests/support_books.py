"""Shared builders of the order book tests: recorded payloads, ccxt markets, offline clients."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.books import DELTA, SNAPSHOT, BookEvent

BOOKS = Path(__file__).parent / "fixtures" / "books"


def recorded(name: str) -> Any:
    """A recorded JSON payload of ``tests/fixtures/books`` (see its SOURCES.md)."""
    return json.loads((BOOKS / name).read_text())


def recorded_frames(name: str) -> list[str]:
    """The recorded WebSocket texts of a ``.jsonl`` recording, in arrival order."""
    return [json.loads(line)["frame"] for line in (BOOKS / name).read_text().splitlines()]


def spot_market(symbol: str, market_id: str, price_tick: float, amount_tick: float) -> dict:
    """A ccxt spot market with the pair's precision as tick sizes (ccxt's TICK_SIZE mode).

    The recorded books give the precisions: Kraken's checksums only match at them.
    """
    base, quote = symbol.split("/")
    return {
        "id": market_id,
        "lowercaseId": market_id.lower(),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "swap": False,
        "future": False,
        "option": False,
        "margin": False,
        "contract": False,
        "active": True,
        "precision": {"amount": amount_tick, "price": price_tick},
        "limits": {},
        "info": {},
    }


def ticking_clock(start: int = 1_700_000_000_000_000) -> Callable[[], int]:
    """A clock that moves one microsecond per reading."""
    counter = itertools.count(start)
    return lambda: next(counter)


class SilentConnection:
    """Stands in for ccxt's socket once connected: records what ccxt sends, receives nothing
    (the test hands frames to ``client.handle_text_or_binary_message`` itself)."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send_str(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000) -> None:
        self.closed = True


def connected_client(exchange: Any, url: str) -> Any:
    """ccxt's WebSocket client for ``url``, marked connected to a :class:`SilentConnection`,
    as ccxt's own static tests do; needs a running event loop."""
    client = exchange.client(url)
    client.connection = SilentConnection()
    client.isConnected = True
    if not client.connected.done():
        client.connected.resolve(url)
    return client


def snapshot(
    bids: list[list[str]],
    asks: list[list[str]],
    *,
    last: int = 1,
    provider: str = "synthetic:alpha",
    ts: int = 1_000_000,
    symbol: str = "BTC/USDT",
    depth: int | None = None,
    checksum: int | None = None,
) -> BookEvent:
    """A SNAPSHOT book event."""
    return BookEvent(
        symbol,
        provider,
        SNAPSHOT,
        ts,
        ts,
        bids,
        asks,
        last_update_id=last,
        depth=depth,
        checksum=checksum,
    )


def delta(
    bids: list[list[str]],
    asks: list[list[str]],
    *,
    first: int | None,
    last: int | None,
    prev: int | None = None,
    provider: str = "synthetic:alpha",
    ts: int = 1_000_000,
    symbol: str = "BTC/USDT",
    checksum: int | None = None,
) -> BookEvent:
    """A DELTA book event."""
    return BookEvent(
        symbol,
        provider,
        DELTA,
        ts,
        ts,
        bids,
        asks,
        first_update_id=first,
        last_update_id=last,
        prev_update_id=prev,
        checksum=checksum,
    )
