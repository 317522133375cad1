"""What a replay subscription reads, and how each record it reads becomes an item."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from gateway.books import replayed_items
from gateway.items import candle_item, news_item, trade_item
from gateway.protocol import StreamType, SubscribeRequest
from gateway.stores import QUOTE_BUILDERS
from gateway.subscription import Subscription
from runtime.book_replay import BookReplay
from runtime.replay import Replay
from runtime.replay_request import Keyed, ReplayRequest
from schemas.times import datetime_to_micros

SOURCES = {
    StreamType.PRICE: "quotes",
    StreamType.QUOTE: "quotes",
    StreamType.MULTI_ASSET: "quotes",
    StreamType.OHLCV: "candles",
    StreamType.TRADES: "trades",
    StreamType.NEWS: "news",
    StreamType.ORDERBOOK: "books",
}

UNCONFLATED = frozenset({StreamType.TRADES, StreamType.NEWS, StreamType.ORDERBOOK})


def item_builder(stream_type: StreamType) -> Callable[[Any], dict[str, object]]:
    """How one record of ``stream_type`` becomes an item of a data message."""
    if stream_type == StreamType.OHLCV:
        return candle_item
    if stream_type == StreamType.TRADES:
        return trade_item
    if stream_type == StreamType.NEWS:
        return keyed_news_item
    return QUOTE_BUILDERS[stream_type]


def keyed_news_item(keyed: Keyed) -> dict[str, object]:
    """The news item of a story read back under its symbol key."""
    return news_item(keyed.symbol, keyed.record)


def conflation_key(stream_type: StreamType, record: Any) -> Hashable:
    """Price, quote and ohlcv items with the same key in one message keep only the latest."""
    if stream_type == StreamType.OHLCV:
        return (record.symbol, record.open_time)
    symbol: str = record.symbol
    return symbol


def replay_request(subscription: Subscription, request: SubscribeRequest) -> ReplayRequest:
    """What a replay subscription reads: its stream and symbols from ``start`` to ``end``,
    paced at its speed (0 on the wire: not paced)."""
    assert request.start is not None
    ohlcv = subscription.stream_type == StreamType.OHLCV
    return ReplayRequest(
        SOURCES[subscription.stream_type],
        tuple(subscription.symbols),
        datetime_to_micros(request.start),
        None if request.end is None else datetime_to_micros(request.end),
        subscription.timeframe if ohlcv else None,
        request.speed or None,
    )


def reader_and_items(
    subscription: Subscription,
) -> tuple[type[Replay], Callable[[Any], dict[str, Any] | None]]:
    """The reader of a replay subscription and how a record it reads becomes an item (None:
    no item): orderbook replays fold ``books.raw`` and publish every book in order."""
    if subscription.stream_type == StreamType.ORDERBOOK:
        return BookReplay, replayed_items(subscription)
    return Replay, item_builder(subscription.stream_type)
