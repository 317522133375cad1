"""Records, configurations and fixed times the tests build, in one place.

Every builder takes keyword overrides of its record's fields; test modules name their own
scenarios with them (``trade(trade_id="t7", ...)``) rather than writing records again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from arbitration.configure import engine_config
from arbitration.engine.config import EngineConfig
from runtime.settings import Settings
from schemas.records import Candle, ProviderStatus, Quote, RawTick, Trade

# The gateway, replay and history tests' records (2025-11-24T16:00:00Z). Test topics keep
# them: conftest.py sets their retention to about ten years.
BASE_US = 1_764_000_000_000_000
# The engine tests' records: 2025-11-22T10:30:00Z, a whole day plus 37 800 s.
T0 = 1_763_807_400_000_000
MS = 1_000
SECOND = 1_000_000
MINUTE = 60 * SECOND


@dataclasses.dataclass
class Found:
    """A consumed record, as aiokafka gives it."""

    value: bytes | None
    topic: str = "t.intake"
    partition: int = 2
    offset: int = 41


def default_config(**changes: Any) -> EngineConfig:
    """The engine configuration of the default settings, with ``changes``."""
    return dataclasses.replace(engine_config(Settings()), **changes)


def quote(symbol: str, price: float, seq: int, **fields: Any) -> Quote:
    """A quote of ``synthetic:alpha`` at ``BASE_US + seq`` µs, ingested 50 µs later, with a
    one-cent spread around ``price`` and a reference price of 100."""
    values: dict[str, Any] = {
        "symbol": symbol,
        "ts_event": BASE_US + seq,
        "ts_ingest": BASE_US + seq + 50,
        "seq": seq,
        "price": price,
        "provider": "synthetic:alpha",
        "confidence": 0.9,
        "bid": price - 0.01,
        "ask": price + 0.01,
        "bid_size": 3.0,
        "ask_size": 4.0,
        "volume": 1000.0 + seq,
        "change": price - 100,
        "change_percent": round(price - 100, 4),
        "reference_price": 100.0,
        "providers": ["synthetic:alpha"],
    }
    return Quote(**{**values, **fields})


def candle(**fields: Any) -> Candle:
    """An open 1m candle of BTC/USDT at ``BASE_US``, first revision, all prices 100."""
    values: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "timeframe": "1m",
        "open_time": BASE_US,
        "open": 100.0,
        "high": 100.0,
        "low": 100.0,
        "close": 100.0,
        "volume": 0.0,
        "is_closed": False,
        "revision": 1,
        "seq": 1,
    }
    return Candle(**{**values, **fields})


def trade(**fields: Any) -> Trade:
    """Trade ``t1`` of ``synthetic:alpha`` on AAPL at ``BASE_US``, ingested 10 µs later."""
    values: dict[str, Any] = {
        "symbol": "AAPL",
        "trade_id": "t1",
        "provider": "synthetic:alpha",
        "ts_event": BASE_US,
        "ts_ingest": BASE_US + 10,
        "price": 100.0,
        "amount": 1.0,
        "side": None,
    }
    return Trade(**{**values, **fields})


def tick(
    provider: str,
    at: int,
    price: float,
    *,
    latency: int = 10 * MS,
    symbol: str = "AAPL",
    kind: str = "QUOTE",
    seq: int | None = None,
    bid: float | None = None,
    ask: float | None = None,
    ref: float | None = None,
    size: float | None = None,
    trade_id: str | None = None,
) -> RawTick:
    """A raw tick with event time ``T0 + at``, received ``latency`` later (a trade has size
    1 unless given; seq is ``at`` unless given)."""
    if kind == "TRADE" and size is None:
        size = 1.0
    return RawTick(
        symbol,
        provider,
        kind,
        T0 + at,
        T0 + at + latency,
        seq if seq is not None else at,
        price,
        bid=bid,
        ask=ask,
        reference_price=ref,
        trade_id=trade_id,
        trade_size=size,
    )


def status(provider: str, at: int, state: str, *, base: int = T0, **fields: Any) -> ProviderStatus:
    """A provider status with event time ``base + at``."""
    return ProviderStatus(provider, base + at, state, **fields)


# The symbols of the replay tests' trades, in turn.
REPLAY_SYMBOLS = ("ETH/USDT", "BTC/USDT", "AAPL", "MSFT")


def replay_trade(number: int, symbol: str | None = None) -> Trade:
    """Trade ``t<number>`` at ``number`` ms after ``BASE_US``, ingested 2 ms later, priced
    ``100 + number``; its symbol is the next of ``REPLAY_SYMBOLS`` unless given."""
    return trade(
        symbol=symbol or REPLAY_SYMBOLS[number % len(REPLAY_SYMBOLS)],
        trade_id=f"t{number}",
        ts_event=BASE_US + number * MS,
        ts_ingest=BASE_US + number * MS + 2 * MS,
        price=100.0 + number,
    )


def second_candle(
    open_s: int, close: float, revision: int, *, closed: bool = False, timeframe: str = "1s"
) -> Candle:
    """Revision ``revision`` of the BTC/USDT candle opened ``open_s`` seconds after
    ``BASE_US``: open 100, closing at ``close``, volume 2.5."""
    return candle(
        timeframe=timeframe,
        open_time=BASE_US + open_s * SECOND,
        high=max(100.0, close),
        low=min(100.0, close),
        close=close,
        volume=2.5,
        is_closed=closed,
        revision=revision,
        seq=open_s * 10 + revision,
    )
