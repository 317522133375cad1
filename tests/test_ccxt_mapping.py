"""Pure parts of the CCXT provider: tick mapping, symbol mapping, backoff, classification."""

from __future__ import annotations

import random

import ccxt
import pytest

from ingest.providers.ccxt_mapping import (
    classify_ccxt_error,
    ticker_to_tick,
    trade_to_tick,
    venue_symbols,
)
from runtime.backoff import LONG, NETWORK, RATE_LIMIT, Backoff, parse_retry_after

TS = 1_764_151_200_000_000


def test_ticker_maps_prices_sizes_and_milliseconds_to_micros() -> None:
    ticker = {
        "symbol": "BTC/USDT",
        "timestamp": 1764151200456,
        "last": 90500.01,
        "bid": 90500.0,
        "ask": 90500.01,
        "bidVolume": 1.5,
        "askVolume": 3.1,
        "baseVolume": 15234.5,
        "open": 91012.35,
    }
    tick = ticker_to_tick(ticker, "BTC/USDT", "ccxt:binance", 7, TS)
    assert tick is not None
    assert (tick.symbol, tick.provider, tick.kind, tick.seq) == (
        "BTC/USDT",
        "ccxt:binance",
        "QUOTE",
        7,
    )
    assert tick.ts_event == 1764151200456000 and tick.ts_ingest == TS
    assert (tick.price, tick.bid, tick.ask) == (90500.01, 90500.0, 90500.01)
    assert (tick.bid_size, tick.ask_size, tick.volume, tick.reference_price) == (
        1.5,
        3.1,
        15234.5,
        91012.35,
    )


@pytest.mark.parametrize(
    ("fields", "price"),
    [
        ({"last": None, "close": 10.5, "bid": None, "ask": None}, 10.5),
        ({"last": None, "close": None, "bid": 10.0, "ask": 11.0}, 10.5),
        ({"last": None, "close": None, "bid": 10.0, "ask": None}, None),
        ({"last": None, "close": None, "bid": None, "ask": None}, None),
        ({"last": 0.0}, None),
    ],
)
def test_ticker_with_missing_fields(fields: dict, price: float | None) -> None:
    tick = ticker_to_tick({"timestamp": None, **fields}, "ETH/USDT", "ccxt:kraken", 1, TS)
    if price is None:
        assert tick is None
    else:
        assert tick is not None and tick.price == price and tick.ts_event == TS
        assert tick.bid_size is None and tick.volume is None and tick.reference_price is None


def test_trade_maps_id_side_size_and_time() -> None:
    trade = {
        "id": 3712345671,
        "timestamp": 1764151200001,
        "price": 90500.01,
        "amount": 0.0012,
        "side": "buy",
    }
    tick = trade_to_tick(trade, "BTC/USDT", "ccxt:binance", 3, TS)
    assert tick is not None
    assert (tick.kind, tick.trade_id, tick.trade_size, tick.side) == (
        "TRADE",
        "3712345671",
        0.0012,
        "buy",
    )
    assert tick.ts_event == 1764151200001000
    assert trade_to_tick({**trade, "amount": None}, "BTC/USDT", "x", 1, TS) is None
    assert trade_to_tick({**trade, "side": None}, "BTC/USDT", "x", 1, TS).side is None


def test_venue_symbols_keep_active_spot_markets_only() -> None:
    markets = {
        "BTC/USDT": {"spot": True, "active": True},
        "ETH/USDT": {"spot": True, "active": False},
        "BTC/USDT:USDT": {"spot": False, "active": True},
    }
    served, missing = venue_symbols(markets, ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    assert served == {"BTC/USDT": "BTC/USDT"}
    assert missing == ["ETH/USDT", "SOL/USDT"]


@pytest.mark.parametrize(
    ("error", "kind", "state", "backoff"),
    [
        (ccxt.RateLimitExceeded("binance 429"), "rate_limited", "DEGRADED", RATE_LIMIT),
        (ccxt.DDoSProtection("binance 418"), "rate_limited", "DEGRADED", RATE_LIMIT),
        (
            ccxt.ExchangeNotAvailable("binance GET x 503 Service Unavailable"),
            "unavailable",
            "DOWN",
            LONG,
        ),
        (
            ccxt.ExchangeNotAvailable(
                "binance GET x 451  Service unavailable from a restricted location"
            ),
            "region_blocked",
            "DOWN",
            LONG,
        ),
        (ccxt.PermissionDenied("blocked"), "region_blocked", "DOWN", LONG),
        (ccxt.BadSymbol("no market"), "missing_market", "DEGRADED", LONG),
        (ccxt.RequestTimeout("slow"), "timeout", "DOWN", NETWORK),
        (TimeoutError(), "timeout", "DOWN", NETWORK),
        (ccxt.NetworkError("reset"), "network", "DOWN", NETWORK),
        (ccxt.BadResponse("garbage"), "bad_response", "DEGRADED", NETWORK),
        (TypeError("NoneType"), "bad_response", "DEGRADED", NETWORK),
    ],
)
def test_classification(error: BaseException, kind: str, state: str, backoff: Backoff) -> None:
    failure = classify_ccxt_error(error)
    assert (failure.kind, failure.state, failure.backoff) == (kind, state, backoff)


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = Backoff(base=1.0, cap=30.0, jitter=0.5)
    rng = random.Random(1)
    for attempt in range(10):
        raw = min(30.0, 2.0**attempt)
        assert raw * 0.5 <= policy.delay(attempt, rng) <= raw
    delays = {round(policy.delay(3, rng), 6) for _ in range(20)}
    assert len(delays) > 1


def test_retry_after_is_a_floor() -> None:
    rng = random.Random(1)
    assert RATE_LIMIT.delay(0, rng, retry_after=30.0) == 30.0
    assert RATE_LIMIT.delay(0, rng, retry_after=0.1) >= 1.0
    assert parse_retry_after(" 12 ") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") is None
