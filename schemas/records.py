"""Typed records, one per Avro schema in ``schemas/avro``.

Times are integers: microseconds since the Unix epoch, UTC (``schemas/times.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RawTick:
    """One observation from a provider: a quote update or a trade print."""

    symbol: str
    provider: str
    kind: str
    ts_event: int
    ts_ingest: int
    seq: int
    price: float
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    volume: float | None = None
    reference_price: float | None = None
    trade_id: str | None = None
    trade_size: float | None = None
    side: str | None = None


TICKS_FEED = "ticks"  # a status of the provider's quotes: what the quote engine scores
BOOKS_FEED = "books"  # a status of its order book feed


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """A provider's health: UP, DEGRADED or DOWN, of its ticks or of its order book feed."""

    provider: str
    ts_event: int
    state: str
    latency_ms: float | None = None
    error_kind: str | None = None
    message: str | None = None
    feed: str = TICKS_FEED


@dataclass(frozen=True, slots=True)
class Quote:
    """The arbitrated view of one symbol."""

    symbol: str
    ts_event: int
    ts_ingest: int
    seq: int
    price: float
    provider: str
    confidence: float
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    volume: float | None = None
    change: float | None = None
    change_percent: float | None = None
    reference_price: float | None = None
    providers: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Candle:
    """An OHLCV candle of the arbitrated price series."""

    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    is_closed: bool
    revision: int
    seq: int
    trade_count: int = 0


@dataclass(frozen=True, slots=True)
class Trade:
    """A deduplicated trade print."""

    symbol: str
    trade_id: str
    provider: str
    ts_event: int
    ts_ingest: int
    price: float
    amount: float
    side: str | None = None


@dataclass(frozen=True, slots=True)
class Demand:
    """How many subscriptions of one gateway include a symbol."""

    symbol: str
    gateway: str
    subscribers: int
    ts: int
    refresh_seconds: float


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input the arbitration engine refused: where it was, why, and its original bytes."""

    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    detail: str
    original: bytes
    ts_input: int
    key: bytes | None = None
    symbol: str | None = None
    provider: str | None = None
    ts_event: int | None = None
