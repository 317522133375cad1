"""Broker-free tests of the gateway's stores, subscriptions and token bucket.

gateway/stores.py (LatestQuotes, CandleStore, TradeStore, MarketStores),
gateway/subscription.py and gateway/limits.py, against docs/protocol.md ("Delivery rules"):
conflation, encode-once fan-out, closed candles never skipped, every trade exactly once, the
data envelope with ``seq``, and rate limiting.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.limits import TokenBucket
from gateway.protocol import StreamType
from gateway.stores import (
    CANDLES_KEPT,
    TRADES_KEPT,
    TRADES_KEPT_SECONDS,
    CandleStore,
    LatestQuotes,
    MarketStores,
    TradesLost,
    TradeStore,
)
from gateway.subscription import Subscription
from schemas.news import NewsItem
from schemas.records import Candle, Trade
from schemas.times import micros_to_iso
from tests.factories import BASE_US, MINUTE, candle, quote, trade
from tests.support_gateway import QUOTE_FIELDS, SPEC_PRICE_FIELDS

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SPEC_OHLCV_FIELDS = ["symbol", "timestamp", "open", "high", "low", "close", "volume", "is_closed"]
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def minute_candle(
    symbol: str, bucket: int, revision: int, *, closed: bool = False, timeframe: str = "1m"
) -> Candle:
    """A candle whose prices identify its bucket and revision."""
    close = 100.0 + bucket + revision / 1000
    return candle(
        symbol=symbol,
        timeframe=timeframe,
        open_time=BASE_US + bucket * MINUTE,
        open=100.0 + bucket,
        high=close + 1,
        low=99.0,
        close=close,
        volume=10.0 * revision,
        is_closed=closed,
        revision=revision,
        seq=revision,
    )


def store_trade(symbol: str, trade_id: str, provider: str = "synthetic:alpha", n: int = 0) -> Trade:
    """Trade ``trade_id`` ``n`` µs after ``BASE_US``, a buy of ``1 + n`` at ``100 + n``."""
    return trade(
        symbol=symbol,
        trade_id=trade_id,
        provider=provider,
        ts_event=BASE_US + n,
        ts_ingest=BASE_US + n + 5,
        price=100.0 + n,
        amount=1.0 + n,
        side="buy",
    )


def sub(stream_type: StreamType, *symbols: str, timeframe: str = "1m") -> Subscription:
    return Subscription(stream_type, list(symbols), 1000, timeframe)


def decoded(items: list[str]) -> list[dict]:
    return [json.loads(item) for item in items]


# ---------------------------------------------------------------- LatestQuotes


def test_latest_quotes_keeps_the_larger_seq():
    book = LatestQuotes()
    book.update(quote("AAPL", 101.0, 5))
    book.update(quote("AAPL", 99.0, 4))
    assert book.latest("AAPL").price == 101.0
    book.update(quote("AAPL", 98.0, 5))
    assert book.latest("AAPL").price == 101.0, "an equal seq must not replace the quote"
    book.update(quote("AAPL", 102.0, 6))
    assert book.latest("AAPL").price == 102.0
    assert book.latest("MSFT") is None


def test_an_ignored_quote_is_not_collected_again():
    book = LatestQuotes()
    subscription = sub(StreamType.PRICE, "AAPL")
    book.update(quote("AAPL", 101.0, 5))
    assert [i["price"] for i in decoded(book.collect(subscription))] == [101.0]
    book.update(quote("AAPL", 50.0, 3))
    book.update(quote("AAPL", 51.0, 5))
    assert book.collect(subscription) == []


def test_collect_conflates_to_one_item_with_the_latest_value():
    book = LatestQuotes()
    subscription = sub(StreamType.PRICE, "AAPL", "MSFT")
    assert book.collect(subscription) == []
    for n in range(10):
        book.update(quote("AAPL", 100.0 + n, n + 1))
    items = decoded(book.collect(subscription))
    assert [(i["symbol"], i["price"]) for i in items] == [("AAPL", 109.0)]
    assert book.collect(subscription) == [], "nothing changed since the last collect"


def test_a_new_subscription_gets_a_snapshot_of_every_known_symbol():
    book = LatestQuotes()
    book.update(quote("AAPL", 101.0, 1))
    book.update(quote("BTC/USDT", 65000.0, 2))
    items = decoded(book.collect(sub(StreamType.MULTI_ASSET, "AAPL", "BTC/USDT", "MSFT")))
    assert [(i["symbol"], i["price"]) for i in items] == [("AAPL", 101.0), ("BTC/USDT", 65000.0)]


def test_price_item_has_exactly_the_spec_fields_in_order():
    book = LatestQuotes()
    book.update(quote("AAPL", 195.5, 7))
    [text] = book.collect(sub(StreamType.PRICE, "AAPL"))
    item = json.loads(text)
    assert list(item) == SPEC_PRICE_FIELDS
    assert item == {
        "symbol": "AAPL",
        "price": 195.5,
        "change": 95.5,
        "change_percent": 95.5,
        "volume": 1007.0,
        "timestamp": micros_to_iso(BASE_US + 7),
        "provider": "synthetic:alpha",
        "confidence": 0.9,
    }
    assert ISO_Z.match(item["timestamp"])


def test_quote_item_adds_the_top_of_book():
    book = LatestQuotes()
    book.update(quote("AAPL", 195.5, 7, bid=195.25, ask=195.75, bid_size=12.0, ask_size=8.5))
    [text] = book.collect(sub(StreamType.QUOTE, "AAPL"))
    item = json.loads(text)
    assert list(item) == QUOTE_FIELDS
    assert (item["bid"], item["ask"], item["bid_size"], item["ask_size"]) == (
        195.25,
        195.75,
        12.0,
        8.5,
    )
    assert item["price"] == 195.5


def test_multi_asset_items_are_price_items():
    book = LatestQuotes()
    book.update(quote("ETH/USDT", 3000.0, 1))
    [text] = book.collect(sub(StreamType.MULTI_ASSET, "ETH/USDT"))
    assert list(json.loads(text)) == SPEC_PRICE_FIELDS


def test_quote_items_are_encoded_once_and_shared():
    book = LatestQuotes()
    book.update(quote("AAPL", 101.0, 1))
    first = book.collect(sub(StreamType.PRICE, "AAPL"))
    second = book.collect(sub(StreamType.PRICE, "AAPL"))
    multi = book.collect(sub(StreamType.MULTI_ASSET, "AAPL"))
    top_a = book.collect(sub(StreamType.QUOTE, "AAPL"))
    top_b = book.collect(sub(StreamType.QUOTE, "AAPL"))
    assert first[0] is second[0], "the same encoded text goes to every price subscriber"
    assert multi[0] is first[0], "price and multi_asset share one encoding"
    assert top_a[0] is top_b[0]
    assert top_a[0] != first[0]


quote_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("update"),
            st.sampled_from(["AAPL", "MSFT", "BTC/USDT"]),
            st.integers(1, 30),
            st.integers(0, 10_000),
        ),
        st.tuples(st.just("collect")),
    ),
    max_size=60,
)


@PROPERTY
@given(ops=quote_ops)
def test_latest_quotes_property_conflates_to_the_highest_seq(ops):
    """After any updates, a collect returns each changed symbol once with its highest-seq
    (first arrived on ties) quote, in subscription order; unchanged symbols are not sent."""
    book = LatestQuotes()
    symbols = ["AAPL", "MSFT", "BTC/USDT"]
    subscription = sub(StreamType.PRICE, *symbols)
    kept: dict[str, tuple[int, float]] = {}
    changed: set[str] = set()
    for op in [*ops, ("collect",)]:
        if op[0] == "update":
            _, symbol, seq, cents = op
            book.update(quote(symbol, cents / 100, seq))
            if symbol not in kept or seq > kept[symbol][0]:
                kept[symbol] = (seq, cents / 100)
                changed.add(symbol)
        else:
            items = decoded(book.collect(subscription))
            expected = [
                (s, kept[s][1], micros_to_iso(BASE_US + kept[s][0]))
                for s in symbols
                if s in changed
            ]
            assert [(i["symbol"], i["price"], i["timestamp"]) for i in items] == expected
            changed.clear()


# ---------------------------------------------------------------- CandleStore


def test_candle_revisions_only_move_forward():
    store = CandleStore()
    subscription = sub(StreamType.OHLCV, "BTC/USDT")
    store.update(minute_candle("BTC/USDT", 0, 3))
    assert [i["close"] for i in decoded(store.collect(subscription))] == [100.003]
    store.update(minute_candle("BTC/USDT", 0, 2))
    store.update(minute_candle("BTC/USDT", 0, 3, closed=True))
    assert store.collect(subscription) == [], "lower and equal revisions are ignored"
    store.update(minute_candle("BTC/USDT", 0, 4, closed=True))
    [item] = decoded(store.collect(subscription))
    assert (item["close"], item["is_closed"]) == (100.004, True)


def test_candle_item_has_the_spec_fields_then_timeframe():
    store = CandleStore()
    store.update(minute_candle("BTC/USDT", 2, 1, closed=True))
    [item] = decoded(store.collect(sub(StreamType.OHLCV, "BTC/USDT")))
    assert list(item) == [*SPEC_OHLCV_FIELDS, "timeframe"]
    assert item["timestamp"] == micros_to_iso(BASE_US + 2 * MINUTE)
    assert (item["open"], item["high"], item["low"], item["close"], item["volume"]) == (
        102.0,
        103.001,
        99.0,
        102.001,
        10.0,
    )
    assert item["is_closed"] is True and item["timeframe"] == "1m"


def test_a_new_candle_subscription_gets_only_the_newest_bucket():
    store = CandleStore()
    for bucket in range(5):
        store.update(minute_candle("BTC/USDT", bucket, 1, closed=bucket < 4))
    items = decoded(store.collect(sub(StreamType.OHLCV, "BTC/USDT")))
    assert [i["timestamp"] for i in items] == [micros_to_iso(BASE_US + 4 * MINUTE)]


def test_later_collects_return_every_bucket_updated_since_oldest_first_in_latest_state():
    store = CandleStore()
    subscription = sub(StreamType.OHLCV, "BTC/USDT")
    store.update(minute_candle("BTC/USDT", 0, 1))
    assert len(store.collect(subscription)) == 1
    store.update(minute_candle("BTC/USDT", 0, 2))
    store.update(minute_candle("BTC/USDT", 0, 3, closed=True))
    store.update(minute_candle("BTC/USDT", 1, 1))
    store.update(minute_candle("BTC/USDT", 1, 2, closed=True))
    store.update(minute_candle("BTC/USDT", 2, 1, closed=True))
    store.update(minute_candle("BTC/USDT", 3, 1))
    items = decoded(store.collect(subscription))
    assert [(i["open"], i["close"], i["is_closed"]) for i in items] == [
        (100.0, 100.003, True),
        (101.0, 101.002, True),
        (102.0, 102.001, True),
        (103.0, 103.001, False),
    ]


def test_candle_timeframes_and_symbols_are_separate_series():
    store = CandleStore()
    store.update(minute_candle("BTC/USDT", 0, 1, timeframe="1m"))
    store.update(minute_candle("BTC/USDT", 0, 1, timeframe="5m"))
    store.update(minute_candle("ETH/USDT", 0, 1, timeframe="1m"))
    five = decoded(store.collect(sub(StreamType.OHLCV, "BTC/USDT", timeframe="5m")))
    assert [(i["symbol"], i["timeframe"]) for i in five] == [("BTC/USDT", "5m")]
    both = decoded(store.collect(sub(StreamType.OHLCV, "BTC/USDT", "ETH/USDT")))
    assert [(i["symbol"], i["timeframe"]) for i in both] == [("BTC/USDT", "1m"), ("ETH/USDT", "1m")]


def test_candle_items_are_encoded_once_and_shared():
    store = CandleStore()
    store.update(minute_candle("BTC/USDT", 0, 1))
    first = store.collect(sub(StreamType.OHLCV, "BTC/USDT"))
    second = store.collect(sub(StreamType.OHLCV, "BTC/USDT"))
    assert first[0] is second[0]


def test_at_most_candles_kept_buckets_and_older_ones_are_ignored():
    store = CandleStore()
    subscription = sub(StreamType.OHLCV, "BTC/USDT")
    store.update(minute_candle("BTC/USDT", 0, 1))
    store.collect(subscription)
    for bucket in range(CANDLES_KEPT + 10):
        store.update(minute_candle("BTC/USDT", bucket, 2, closed=True))
    series = store.series[("BTC/USDT", "1m")]
    assert len(series.buckets) == CANDLES_KEPT
    oldest_kept = 10
    assert next(iter(series.buckets)) == BASE_US + oldest_kept * MINUTE
    items = decoded(store.collect(subscription))
    assert [i["open"] for i in items] == [100.0 + b for b in range(10, CANDLES_KEPT + 10)]
    # A new revision of an evicted bucket, and a bucket older than every kept one: ignored.
    store.update(minute_candle("BTC/USDT", 3, 9, closed=True))
    store.update(minute_candle("BTC/USDT", -5, 1, closed=True))
    assert len(series.buckets) == CANDLES_KEPT
    assert store.collect(subscription) == []
    assert next(iter(series.buckets)) == BASE_US + oldest_kept * MINUTE


def test_a_late_bucket_between_kept_ones_is_delivered_in_order():
    store = CandleStore()
    subscription = sub(StreamType.OHLCV, "BTC/USDT")
    store.update(minute_candle("BTC/USDT", 0, 1))
    store.update(minute_candle("BTC/USDT", 2, 1))
    store.collect(subscription)
    store.update(minute_candle("BTC/USDT", 3, 1))
    store.update(minute_candle("BTC/USDT", 1, 1, closed=True))
    newcomer = decoded(store.collect(sub(StreamType.OHLCV, "BTC/USDT")))
    items = decoded(store.collect(subscription))
    assert [i["open"] for i in items] == [101.0, 103.0], "oldest first"
    assert [i["open"] for i in newcomer] == [103.0], "a new subscription gets the newest"


def test_closed_candles_are_not_skipped_when_the_first_collect_found_no_candles():
    store = CandleStore()
    subscription = sub(StreamType.OHLCV, "BTC/USDT")
    assert store.collect(subscription) == []
    store.update(minute_candle("BTC/USDT", 0, 1))
    store.update(minute_candle("BTC/USDT", 0, 2, closed=True))
    store.update(minute_candle("BTC/USDT", 1, 1))
    items = decoded(store.collect(subscription))
    assert [(i["open"], i["is_closed"]) for i in items] == [(100.0, True), (101.0, False)]


@st.composite
def candle_histories(draw):
    """Updates to up to six buckets, interleaved with collects; the first thing is an update.

    Buckets open in time order (a bucket's first update comes after every older bucket's first
    update), later revisions of any bucket interleave freely, and some updates repeat or lower
    a revision (those must be ignored).
    """
    raw = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("update"), st.integers(0, 5), st.booleans(), st.integers(0, 3)),
                st.tuples(st.just("collect")),
            ),
            min_size=1,
            max_size=50,
        )
    )
    first = draw(st.integers(0, 5))
    raw = [("update", first, False, 0), *raw]
    order: dict[int, int] = {}
    ops = []
    for op in raw:
        if op[0] == "update":
            bucket = order.setdefault(op[1], len(order))
            ops.append(("update", bucket, op[2], op[3]))
        else:
            ops.append(op)
    return ops


@PROPERTY
@given(ops=candle_histories())
def test_candle_property_no_bucket_update_is_lost(ops):
    """For any interleaving: every collect gives each bucket updated since the previous collect
    once, oldest first, in its latest state; the first gives only the newest bucket; the last
    item seen of each bucket is its final state, and every bucket updated after the first
    collect is seen."""
    store = CandleStore()
    subscription = sub(StreamType.OHLCV, "BTC/USDT")
    state: dict[int, tuple[int, bool]] = {}
    dirty: set[int] = set()
    seen_last: dict[int, tuple[float, bool]] = {}
    updated_after_first: set[int] = set()
    collected_once = False
    for op in [*ops, ("collect",)]:
        if op[0] == "update":
            _, bucket, closed, lower_by = op
            current = state.get(bucket, (0, False))[0]
            fresh = lower_by == 0 or bucket not in state
            revision = current + 1 if fresh else current - lower_by + 1
            store.update(minute_candle("BTC/USDT", bucket, revision, closed=closed))
            if revision > current:
                state[bucket] = (revision, closed)
                dirty.add(bucket)
                if collected_once:
                    updated_after_first.add(bucket)
            continue
        items = decoded(store.collect(subscription))
        buckets = [round(i["open"] - 100.0) for i in items]
        assert buckets == sorted(buckets) and len(set(buckets)) == len(buckets)
        for item, bucket in zip(items, buckets, strict=True):
            revision, closed = state[bucket]
            assert (item["close"], item["is_closed"]) == (
                minute_candle("BTC/USDT", bucket, revision, closed=closed).close,
                closed,
            )
            seen_last[bucket] = (item["close"], item["is_closed"])
        if collected_once:
            assert set(buckets) == dirty
        else:
            assert buckets == [max(state)]
            collected_once = True
        dirty.clear()
    for bucket in updated_after_first:
        assert bucket in seen_last, f"bucket {bucket} was updated but never delivered"
    for bucket, last in seen_last.items():
        revision, closed = state[bucket]
        assert last == (minute_candle("BTC/USDT", bucket, revision, closed=closed).close, closed)


# ---------------------------------------------------------------- TradeStore


def test_trades_are_delivered_once_in_arrival_order_and_new_subscriptions_start_now():
    store = TradeStore()
    store.update(store_trade("BTC/USDT", "t1"))
    subscription = sub(StreamType.TRADES, "BTC/USDT")
    assert store.collect(subscription) == [], "a new subscription starts at now"
    for n, trade_id in enumerate(["t2", "t3", "t4"]):
        store.update(store_trade("BTC/USDT", trade_id, n=n))
    assert [i["id"] for i in decoded(store.collect(subscription))] == ["t2", "t3", "t4"]
    assert store.collect(subscription) == []
    store.update(store_trade("BTC/USDT", "t5"))
    assert [i["id"] for i in decoded(store.collect(subscription))] == ["t5"]


def test_trade_item_fields():
    store = TradeStore()
    subscription = sub(StreamType.TRADES, "BTC/USDT")
    store.collect(subscription)
    store.update(store_trade("BTC/USDT", "t9", n=3))
    [item] = decoded(store.collect(subscription))
    assert item == {
        "symbol": "BTC/USDT",
        "id": "t9",
        "price": 103.0,
        "amount": 4.0,
        "side": "buy",
        "timestamp": micros_to_iso(BASE_US + 3),
        "provider": "synthetic:alpha",
    }


def test_duplicate_trades_by_provider_and_id_are_dropped():
    store = TradeStore()
    subscription = sub(StreamType.TRADES, "BTC/USDT")
    store.collect(subscription)
    store.update(store_trade("BTC/USDT", "t1", "synthetic:alpha"))
    store.update(store_trade("BTC/USDT", "t1", "synthetic:alpha", n=7))
    store.update(store_trade("BTC/USDT", "t1", "synthetic:beta"))
    items = decoded(store.collect(subscription))
    assert [(i["id"], i["provider"]) for i in items] == [
        ("t1", "synthetic:alpha"),
        ("t1", "synthetic:beta"),
    ]


def test_trades_are_encoded_once_and_shared():
    store = TradeStore()
    first, second = sub(StreamType.TRADES, "ETH/USDT"), sub(StreamType.TRADES, "ETH/USDT")
    store.collect(first)
    store.collect(second)
    store.update(store_trade("ETH/USDT", "x"))
    assert store.collect(first)[0] is store.collect(second)[0]


def test_trades_lost_when_the_ring_evicted_unseen_trades():
    store = TradeStore()
    behind = sub(StreamType.TRADES, "BTC/USDT")
    just_in_time = sub(StreamType.TRADES, "BTC/USDT")
    store.collect(behind)
    for n in range(TRADES_KEPT):
        store.update(store_trade("BTC/USDT", f"a{n}"))
    items = store.collect(just_in_time)
    assert items == [], "just_in_time starts now"
    store.update(store_trade("BTC/USDT", "last"))
    with pytest.raises(TradesLost, match="1 trades of BTC/USDT were evicted"):
        store.collect(behind)
    assert [i["id"] for i in decoded(store.collect(just_in_time))] == ["last"]


def test_exactly_trades_kept_unseen_trades_are_all_still_delivered():
    store = TradeStore()
    subscription = sub(StreamType.TRADES, "BTC/USDT")
    store.collect(subscription)
    for n in range(TRADES_KEPT):
        store.update(store_trade("BTC/USDT", f"a{n}"))
    items = decoded(store.collect(subscription))
    assert len(items) == TRADES_KEPT
    assert (items[0]["id"], items[-1]["id"]) == ("a0", f"a{TRADES_KEPT - 1}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_trades_older_than_the_kept_seconds_leave_and_a_client_that_kept_up_lost_none():
    clock = FakeClock()
    store = TradeStore(clock)
    keeping_up, stalled = sub(StreamType.TRADES, "BTC/USDT"), sub(StreamType.TRADES, "BTC/USDT")
    store.collect(keeping_up)
    store.collect(stalled)
    delivered = []
    for n in range(30):
        store.update(store_trade("BTC/USDT", f"a{n}", n=n))
        clock.now += 10.0
        delivered += [item["id"] for item in decoded(store.collect(keeping_up))]
    assert delivered == [f"a{n}" for n in range(30)]
    kept = len(store.recent["BTC/USDT"])
    assert kept == int(TRADES_KEPT_SECONDS // 10) + 1, "only the kept seconds' trades stay"
    with pytest.raises(TradesLost, match=f"{30 - kept} trades of BTC/USDT were evicted"):
        store.collect(stalled)


def test_a_duplicate_is_dropped_while_its_original_is_kept_and_sent_once_it_left():
    clock = FakeClock()
    store = TradeStore(clock)
    subscription = sub(StreamType.TRADES, "BTC/USDT")
    store.collect(subscription)
    store.update(store_trade("BTC/USDT", "x"))
    clock.now += TRADES_KEPT_SECONDS - 1
    store.update(store_trade("BTC/USDT", "x"))
    assert [item["id"] for item in decoded(store.collect(subscription))] == ["x"]
    clock.now += 2
    store.update(store_trade("BTC/USDT", "y"))
    store.update(store_trade("BTC/USDT", "x"))
    assert [item["id"] for item in decoded(store.collect(subscription))] == ["y", "x"]


trade_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("trade"),
            st.sampled_from(["BTC/USDT", "ETH/USDT"]),
            st.integers(0, 25),
            st.sampled_from(["synthetic:alpha", "synthetic:beta"]),
        ),
        st.tuples(st.just("collect")),
    ),
    max_size=80,
)


@PROPERTY
@given(ops=trade_ops)
def test_trade_property_every_trade_after_the_cursor_exactly_once_in_order(ops):
    store = TradeStore()
    symbols = ["BTC/USDT", "ETH/USDT"]
    subscription = sub(StreamType.TRADES, *symbols)
    seen_identities: dict[str, set[tuple[str, str]]] = {s: set() for s in symbols}
    expected: dict[str, list[tuple[str, str]]] = {s: [] for s in symbols}
    delivered: dict[str, list[tuple[str, str]]] = {s: [] for s in symbols}
    started = False
    for op in [*ops, ("collect",)]:
        if op[0] == "trade":
            _, symbol, number, provider = op
            identity = (provider, f"t{number}")
            store.update(store_trade(symbol, identity[1], provider))
            if identity not in seen_identities[symbol]:
                seen_identities[symbol].add(identity)
                if started:
                    expected[symbol].append(identity)
            continue
        items = decoded(store.collect(subscription))
        symbols_in_order = [i["symbol"] for i in items]
        assert symbols_in_order == sorted(symbols_in_order, key=symbols.index)
        for item in items:
            delivered[item["symbol"]].append((item["provider"], item["id"]))
        started = True
    assert delivered == expected


# ---------------------------------------------------------------- MarketStores


def test_market_routes_each_stream_type_to_its_store():
    market = MarketStores()
    assert market.store_for(StreamType.PRICE) is market.quotes
    assert market.store_for(StreamType.QUOTE) is market.quotes
    assert market.store_for(StreamType.MULTI_ASSET) is market.quotes
    assert market.store_for(StreamType.OHLCV) is market.candles
    assert market.store_for(StreamType.TRADES) is market.trades


# ---------------------------------------------------------------- Subscription


def test_data_message_envelope_and_seq_from_one():
    subscription = Subscription(StreamType.QUOTE, ["AAPL"], 250)
    book = LatestQuotes()
    for seq in (1, 2, 3):
        book.update(quote("AAPL", 100.0 + seq, seq))
        items = book.collect(subscription)
        message = json.loads(subscription.data_message(items))
        assert set(message) == {
            "type",
            "stream_type",
            "subscription_id",
            "timestamp",
            "seq",
            "data",
        }
        assert list(message)[:4] == ["type", "stream_type", "subscription_id", "timestamp"]
        assert message["type"] == "data" and message["stream_type"] == "quote"
        assert message["subscription_id"] == subscription.id
        assert ISO_Z.match(message["timestamp"])
        assert message["seq"] == seq == subscription.seq
        assert message["data"] == decoded(items)


def test_seq_is_per_subscription_and_ids_are_unique():
    first = Subscription(StreamType.PRICE, ["AAPL"], 1000)
    second = Subscription(StreamType.PRICE, ["AAPL"], 1000)
    assert first.id != second.id
    first.data_message([])
    first.data_message([])
    assert json.loads(second.data_message([]))["seq"] == 1
    assert json.loads(first.data_message([]))["seq"] == 3


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@PROPERTY
@given(values=st.lists(json_values, max_size=6), stream_type=st.sampled_from(list(StreamType)))
def test_data_message_is_valid_json_around_any_encoded_items(values, stream_type):
    subscription = Subscription(stream_type, ["AAPL"], 1000)
    items = [json.dumps(value) for value in values]
    message = json.loads(subscription.data_message(items))
    assert message["data"] == values
    assert message["stream_type"] == stream_type.value and message["seq"] == 1


def test_remove_symbols_returns_those_it_had_and_drops_their_cursors():
    subscription = Subscription(StreamType.PRICE, ["AAPL", "MSFT", "TSLA"], 1000)
    book = LatestQuotes()
    for n, symbol in enumerate(["AAPL", "MSFT", "TSLA"]):
        book.update(quote(symbol, 100.0 + n, n + 1))
    assert len(book.collect(subscription)) == 3
    assert subscription.remove_symbols(["TSLA", "NOPE", "AAPL"]) == ["TSLA", "AAPL"]
    assert subscription.symbols == ["MSFT"]
    assert set(subscription.cursors) == {"MSFT"}
    assert subscription.remove_symbols(["AAPL"]) == []
    book.update(quote("AAPL", 200.0, 10))
    book.update(quote("MSFT", 201.0, 11))
    assert [i["symbol"] for i in decoded(book.collect(subscription))] == ["MSFT"]


# ---------------------------------------------------------------- TokenBucket


def test_token_bucket_allows_burst_at_once_then_rate_per_second():
    bucket = TokenBucket(rate=5.0, burst=10.0, now=100.0)
    assert [bucket.take(100.0) for _ in range(11)] == [True] * 10 + [False]
    assert bucket.take(100.1) is False
    assert bucket.take(100.2) is True
    assert bucket.take(100.2) is False
    assert sum(bucket.take(101.2) for _ in range(10)) == 5


def test_token_bucket_never_saves_more_than_burst():
    bucket = TokenBucket(rate=50.0, burst=100.0, now=0.0)
    assert sum(bucket.take(3600.0) for _ in range(1000)) == 100


@st.composite
def request_times(draw):
    gaps = draw(
        st.lists(
            st.one_of(st.just(0.0), st.floats(0.0, 0.5), st.floats(0.0, 5.0)),
            min_size=1,
            max_size=300,
        )
    )
    times, now = [], 1000.0
    for gap in gaps:
        now += gap
        times.append(now)
    return times


@PROPERTY
@given(rate=st.floats(0.5, 200.0), burst=st.integers(1, 50), times=request_times())
def test_token_bucket_never_grants_more_than_burst_plus_rate_times_window(rate, burst, times):
    bucket = TokenBucket(rate, float(burst), times[0])
    granted = [t for t in times if bucket.take(t)]
    assert granted[:burst] == times[:burst], "the burst is allowed at once"
    # count(i..j) = j - i + 1 <= burst + rate * (g[j] - g[i]) for every i <= j, i.e.
    # (j - rate * g[j]) - min over i <= j of (i - rate * g[i]) <= burst - 1.
    lowest = float("inf")
    for j, moment in enumerate(granted):
        lowest = min(lowest, j - rate * moment)
        assert (j - rate * moment) - lowest <= burst - 1 + 1e-6, (
            f"more than {burst} + {rate} * window tokens granted up to t={moment}"
        )


@PROPERTY
@given(
    rate=st.floats(0.5, 200.0),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(1.0, 3.0), min_size=1, max_size=100),
)
def test_token_bucket_never_refuses_a_client_within_the_rate(rate, burst, gaps):
    now = 0.0
    bucket = TokenBucket(rate, float(burst), now)
    assert bucket.take(now)
    for gap in gaps:
        now += gap * 1.000001 / rate
        assert bucket.take(now)


@given(
    st.dictionaries(
        st.sampled_from(["AAPL", "MSFT", "TSLA", "NVDA"]),
        st.tuples(st.floats(0, 160), st.booleans()),  # idle or not at 160 with a 60 s span
    )
)
def test_eviction_forgets_exactly_the_idle_symbols_nobody_holds(symbols):
    """Every store drops a symbol without demand whose last data is more than the span
    old, and keeps the others (demanded ones whatever their age)."""
    market = MarketStores()
    for n, (symbol, (seen, _)) in enumerate(symbols.items()):
        market.quotes.update(quote(symbol, 100.0, n + 1))
        market.candles.update(candle(symbol=symbol))
        market.trades.update(trade(symbol=symbol))
        market.news.update(
            symbol, NewsItem(f"n{n}", "h", None, "https://a.com/x", "https://a.com/x", None, 1, 2)
        )
        market.touch(symbol, seen)
    demanded = {symbol for symbol, (_, wanted) in symbols.items() if wanted}
    gone = market.evict(160.0, 60.0, demanded)
    expected = {s for s, (seen, wanted) in symbols.items() if 160.0 - seen > 60.0 and not wanted}
    assert set(gone) == expected
    kept = set(symbols) - expected
    assert set(market.touched) == kept
    assert set(market.quotes.entries) == set(market.quotes.received_at) == kept
    assert {symbol for symbol, _ in market.candles.series} == kept
    assert set(market.trades.recent) == set(market.trades.counts) == kept
    assert set(market.news.symbols) == kept
