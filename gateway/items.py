"""The JSON shape of one symbol's entry in a data message, per stream type."""

from __future__ import annotations

from schemas.news import NewsItem
from schemas.records import Candle, Quote, Trade
from schemas.times import fast_micros_to_iso


def price_item(quote: Quote) -> dict[str, object]:
    """The price item of one symbol (docs/protocol.md)."""
    return {
        "symbol": quote.symbol,
        "price": quote.price,
        "change": quote.change,
        "change_percent": quote.change_percent,
        "volume": quote.volume,
        "timestamp": fast_micros_to_iso(quote.ts_event),
        "provider": quote.provider,
        "confidence": quote.confidence,
    }


def quote_item(quote: Quote) -> dict[str, object]:
    """A price update with the top of book (bid, ask and their sizes), the fresh providers
    and the score of each one that could drive the quote."""
    return {
        **price_item(quote),
        "bid": quote.bid,
        "ask": quote.ask,
        "bid_size": quote.bid_size,
        "ask_size": quote.ask_size,
        "providers": quote.providers,
        "scores": quote.scores,
    }


def candle_item(candle: Candle) -> dict[str, object]:
    """The OHLCV item of one candle, with its timeframe."""
    return {
        "symbol": candle.symbol,
        "timestamp": fast_micros_to_iso(candle.open_time),
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
        "is_closed": candle.is_closed,
        "timeframe": candle.timeframe,
    }


def trade_item(trade: Trade) -> dict[str, object]:
    """One trade print."""
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "price": trade.price,
        "amount": trade.amount,
        "side": trade.side,
        "timestamp": fast_micros_to_iso(trade.ts_event),
        "provider": trade.provider,
    }


def news_item(symbol: str, item: NewsItem) -> dict[str, object]:
    """One story about ``symbol`` (docs/protocol.md, "News"); ``replaces`` lists the ids of
    stories it merged, which a client drops."""
    return {
        "symbol": symbol,
        "id": item.id,
        "headline": item.headline,
        "summary": item.summary,
        "url": item.url,
        "publisher": item.publisher,
        "timestamp": fast_micros_to_iso(item.published_us),
        "providers": item.providers,
        "symbols": item.symbols,
        "sentiment": item.sentiment,
        "symbol_sentiment": item.symbol_sentiment.get(symbol),
        "relevance": item.symbol_relevance.get(symbol),
        "language": item.language,
        "replaces": item.replaces,
    }
