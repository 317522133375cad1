"""The latest arbitrated quote of every symbol, each encoded once per stream type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from gateway.protocol import StreamType
from schemas.records import Quote, micros_to_iso


def price_item(quote: Quote) -> dict[str, object]:
    """The spec's price update of one symbol."""
    return {
        "symbol": quote.symbol,
        "price": quote.price,
        "change": quote.change,
        "change_percent": quote.change_percent,
        "volume": quote.volume,
        "timestamp": micros_to_iso(quote.ts_event),
        "provider": quote.provider,
        "confidence": quote.confidence,
    }


def quote_item(quote: Quote) -> dict[str, object]:
    """A price update with the top of book: bid, ask and their sizes."""
    return {
        **price_item(quote),
        "bid": quote.bid,
        "ask": quote.ask,
        "bid_size": quote.bid_size,
        "ask_size": quote.ask_size,
    }


ITEM_BUILDERS: dict[StreamType, Callable[[Quote], dict[str, object]]] = {
    StreamType.PRICE: price_item,
    StreamType.MULTI_ASSET: price_item,
    StreamType.QUOTE: quote_item,
}


@dataclass
class CachedQuote:
    """One symbol's latest quote, its version, and its JSON per stream type (made lazily)."""

    quote: Quote
    version: int
    encoded: dict[StreamType, str] = field(default_factory=dict)

    def json(self, stream_type: StreamType) -> str:
        text = self.encoded.get(stream_type)
        if text is None:
            text = orjson.dumps(ITEM_BUILDERS[stream_type](self.quote)).decode()
            self.encoded[stream_type] = text
        return text


class LatestQuotes:
    """Symbol to latest quote; every update gets a new, larger version number."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedQuote] = {}
        self.version = 0

    def update(self, quote: Quote) -> None:
        """Keep ``quote`` unless a quote with a larger ``seq`` is already known."""
        current = self.entries.get(quote.symbol)
        if current is not None and current.quote.seq >= quote.seq:
            return
        self.version += 1
        self.entries[quote.symbol] = CachedQuote(quote, self.version)

    def get(self, symbol: str) -> CachedQuote | None:
        return self.entries.get(symbol)
