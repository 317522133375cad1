"""What the gateway knows of the market: latest quotes, recent candles, recent trades.

Each store encodes an item once, when it arrives, and hands the same text to every
subscription that collects it. A subscription keeps a cursor per symbol (a version number)
so each store can tell what that subscription has not seen yet.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import orjson

from gateway.books import BookStore
from gateway.items import candle_item, price_item, quote_item, trade_item
from gateway.news_store import NewsStore
from gateway.protocol import MAX_INTERVAL_MS, StreamType
from schemas.records import Candle, Quote, Trade
from schemas.times import TIMEFRAMES

if TYPE_CHECKING:
    from gateway.subscription import Subscription

CANDLES_KEPT = 64
TRADES_KEPT = 10_000
TRADES_KEPT_SECONDS = 2 * MAX_INTERVAL_MS / 1000


QuoteBuilder = Callable[[Quote], dict[str, object]]
QUOTE_BUILDERS: dict[StreamType, QuoteBuilder] = {
    StreamType.PRICE: price_item,
    StreamType.MULTI_ASSET: price_item,
    StreamType.QUOTE: quote_item,
}


class TradesLost(Exception):
    """A subscription fell so far behind that trades it never got were evicted."""


def _encode(item: dict[str, object]) -> str:
    return orjson.dumps(item).decode()


@dataclass
class _CachedQuote:
    quote: Quote
    version: int
    encoded: dict[QuoteBuilder, str] = field(default_factory=dict)

    def json(self, builder: QuoteBuilder) -> str:
        text = self.encoded.get(builder)
        if text is None:
            text = self.encoded[builder] = _encode(builder(self.quote))
        return text


class LatestQuotes:
    """Symbol to latest quote; a quote replaces another only if its ``seq`` is larger."""

    def __init__(self) -> None:
        self.entries: dict[str, _CachedQuote] = {}
        self.received_at: dict[str, float] = {}
        self.version = 0

    def update(self, quote: Quote) -> None:
        """Keep ``quote`` and note when it arrived (monotonic clock, for staleness)."""
        current = self.entries.get(quote.symbol)
        if current is not None and current.quote.seq >= quote.seq:
            return
        self.version += 1
        self.entries[quote.symbol] = _CachedQuote(quote, self.version)
        self.received_at[quote.symbol] = time.monotonic()

    def forget(self, symbol: str) -> None:
        """Drop what is held of ``symbol``."""
        self.entries.pop(symbol, None)
        self.received_at.pop(symbol, None)

    def latest(self, symbol: str) -> Quote | None:
        cached = self.entries.get(symbol)
        return None if cached is None else cached.quote

    def providers(self, symbol: str) -> list[str]:
        """The providers of the symbol's latest quote (none before its first)."""
        quote = self.latest(symbol)
        return [] if quote is None else quote.providers

    def newest_ts_ingest(self, symbols: list[str]) -> int | None:
        """The ingest time of the quote that arrived last among ``symbols``."""
        cached = [entry for symbol in symbols if (entry := self.entries.get(symbol))]
        return max(cached, key=lambda entry: entry.version).quote.ts_ingest if cached else None

    def collect(self, subscription: Subscription) -> list[str]:
        """Items of every symbol whose quote changed since its cursor (conflated)."""
        builder = QUOTE_BUILDERS[subscription.stream_type]
        cursors = subscription.cursors
        items = []
        for symbol in subscription.symbols:
            cached = self.entries.get(symbol)
            if cached is not None and cached.version != cursors.get(symbol):
                cursors[symbol] = cached.version
                items.append(cached.json(builder))
        return items


@dataclass
class _Bucket:
    revision: int
    version: int
    json: str


@dataclass
class _Series:
    buckets: OrderedDict[int, _Bucket] = field(default_factory=OrderedDict)
    version: int = 0


class CandleStore:
    """Per (symbol, timeframe), the latest state of the last ``CANDLES_KEPT`` buckets."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], _Series] = {}
        self.version = 0

    def forget(self, symbol: str) -> None:
        """Drop every series of ``symbol``."""
        for timeframe in TIMEFRAMES:
            self.series.pop((symbol, timeframe), None)

    def update(self, candle: Candle) -> None:
        series = self.series.setdefault((candle.symbol, candle.timeframe), _Series())
        buckets = series.buckets
        current = buckets.get(candle.open_time)
        if current is not None and current.revision >= candle.revision:
            return
        newest = next(reversed(buckets), None)
        full = len(buckets) >= CANDLES_KEPT
        if current is None and full and candle.open_time < next(iter(buckets)):
            return
        self.version += 1
        series.version = self.version
        buckets[candle.open_time] = _Bucket(
            candle.revision, self.version, _encode(candle_item(candle))
        )
        if current is None and newest is not None and candle.open_time < newest:
            ordered = sorted(buckets.items())
            buckets.clear()
            buckets.update(ordered)
        while len(buckets) > CANDLES_KEPT:
            buckets.popitem(last=False)

    def collect(self, subscription: Subscription) -> list[str]:
        """Every bucket updated since the cursor, oldest first, each in its latest state.

        A new subscription gets only the newest bucket. A bucket's final (closed) state is
        always the newest version of it, so no closed candle is ever skipped.
        """
        cursors = subscription.cursors
        items = []
        for symbol in subscription.symbols:
            series = self.series.get((symbol, subscription.timeframe))
            cursor = cursors.get(symbol)
            if series is None:
                cursors.setdefault(symbol, 0)
                continue
            if series.version == cursor:
                continue
            if cursor is None:
                items.append(series.buckets[next(reversed(series.buckets))].json)
            else:
                items.extend(b.json for b in series.buckets.values() if b.version > cursor)
            cursors[symbol] = series.version
        return items


class _KeptTrade(NamedTuple):
    serial: int
    identity: tuple[str, str]
    json: str
    arrived: float


class TradeStore:
    """Per symbol, the trades that arrived within ``TRADES_KEPT_SECONDS`` of its newest one
    (at most ``TRADES_KEPT``), deduplicated by provider and trade id among those kept.

    Twice the longest interval: a subscription collects at least once per interval unless
    its client blocks, and a client blocked longer than ``slow_consumer_seconds`` is closed,
    so every client that keeps up gets every trade, and memory follows the trade rate
    rather than growing to ``TRADES_KEPT`` per symbol. A duplicate that arrives after its
    original has left (a worker reprocessing after a longer outage) is sent again; trade
    messages carry provider and id for that case.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.recent: dict[str, deque[_KeptTrade]] = {}
        self.seen: dict[str, set[tuple[str, str]]] = {}
        self.counts: dict[str, int] = {}

    def forget(self, symbol: str) -> None:
        """Drop the trades of ``symbol`` and its count."""
        self.recent.pop(symbol, None)
        self.seen.pop(symbol, None)
        self.counts.pop(symbol, None)

    def update(self, trade: Trade) -> None:
        identity = (trade.provider, trade.trade_id)
        seen = self.seen.setdefault(trade.symbol, set())
        if identity in seen:
            return
        ring = self.recent.setdefault(trade.symbol, deque())
        count = self.counts[trade.symbol] = self.counts.get(trade.symbol, 0) + 1
        now = self.clock()
        ring.append(_KeptTrade(count, identity, _encode(trade_item(trade)), now))
        seen.add(identity)
        horizon = now - TRADES_KEPT_SECONDS
        while len(ring) > TRADES_KEPT or ring[0].arrived < horizon:
            seen.discard(ring.popleft().identity)

    def collect(self, subscription: Subscription) -> list[str]:
        """Every trade since the cursor, in arrival order; a new cursor starts at now.

        Raises :class:`TradesLost` if trades the subscription has not had were evicted.
        """
        cursors = subscription.cursors
        items: list[str] = []
        for symbol in subscription.symbols:
            newest = self.counts.get(symbol, 0)
            cursor = cursors.setdefault(symbol, newest)
            if newest == cursor:
                continue
            ring = self.recent[symbol]
            oldest = ring[0].serial
            if oldest > cursor + 1:
                raise TradesLost(f"{oldest - cursor - 1} trades of {symbol} were evicted")
            new = list(itertools.islice(reversed(ring), newest - cursor))
            items.extend(kept.json for kept in reversed(new))
            cursors[symbol] = newest
        return items


@dataclass
class MarketStores:
    """The stores a gateway keeps, and which one serves each stream type."""

    quotes: LatestQuotes = field(default_factory=LatestQuotes)
    candles: CandleStore = field(default_factory=CandleStore)
    trades: TradeStore = field(default_factory=TradeStore)
    news: NewsStore = field(default_factory=NewsStore)
    books: BookStore = field(default_factory=BookStore)
    touched: dict[str, float] = field(default_factory=dict)

    def touch(self, symbol: str, now: float) -> None:
        """Note that data of ``symbol`` arrived at ``now`` (monotonic seconds)."""
        self.touched[symbol] = now

    def evict(self, now: float, idle: float, demanded: Collection[str]) -> list[str]:
        """Forget, in every store, the symbols no subscription holds whose last data is more
        than ``idle`` seconds before ``now``; the symbols forgotten."""
        gone = [
            symbol
            for symbol, seen in self.touched.items()
            if now - seen > idle and symbol not in demanded
        ]
        for symbol in gone:
            del self.touched[symbol]
            for store in (self.quotes, self.candles, self.trades, self.news, self.books):
                store.forget(symbol)
        return gone

    def store_for(
        self, stream_type: StreamType
    ) -> LatestQuotes | CandleStore | TradeStore | NewsStore | BookStore:
        if stream_type == StreamType.NEWS:
            return self.news
        if stream_type == StreamType.ORDERBOOK:
            return self.books
        if stream_type == StreamType.OHLCV:
            return self.candles
        if stream_type == StreamType.TRADES:
            return self.trades
        return self.quotes
