"""Models of the messages the gateway sends: the contract for the AsyncAPI document.

The session writes these frames as pre-encoded JSON for speed; the tests check every frame
they receive against the schemas generated from these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from gateway.protocol import ErrorCode, StreamType, Timeframe

AnyStream = StreamType | Literal["alerts"]


class SubscriptionAck(BaseModel):
    """Confirms a subscription; precedes all of its data."""

    type: Literal["subscription_ack"]
    stream_type: AnyStream
    symbols: list[str]
    subscription_id: str
    interval_ms: int
    timestamp: str
    timeframe: Timeframe | None = None
    start: str | None = None
    end: str | None = None
    speed: float | None = None
    depth: int | None = None
    venue: str | None = None


class PriceItem(BaseModel):
    """One symbol in a price or multi_asset data message."""

    symbol: str
    price: float
    change: float | None
    change_percent: float | None
    volume: float | None
    timestamp: str
    provider: str
    confidence: float


class QuoteItem(PriceItem):
    """One symbol in a quote data message: the price fields, the top of book, the providers
    that were fresh and the score in [0, 1] of each one that could drive the quote (fresh and
    not DOWN)."""

    bid: float | None
    ask: float | None
    bid_size: float | None
    ask_size: float | None
    providers: list[str]
    scores: dict[str, float]


class OhlcvItem(BaseModel):
    """One candle in an ohlcv data message; ``timestamp`` is its open time."""

    symbol: str
    timestamp: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    is_closed: bool
    timeframe: Timeframe


class TradeItem(BaseModel):
    """One trade in a trades data message."""

    symbol: str
    id: str
    price: float
    amount: float
    side: Literal["buy", "sell"] | None
    timestamp: str
    provider: str


class NewsEntry(BaseModel):
    """One story about ``symbol`` in a news data message: ``timestamp`` is when it was
    published, ``providers`` every provider that carried it, ``symbols`` all it is about,
    ``sentiment`` in [-1, 1] where a provider gave one (``symbol_sentiment`` for
    ``symbol``), ``replaces`` the ids of stories it merged (drop those)."""

    symbol: str
    id: str
    headline: str
    summary: str | None
    url: str
    publisher: str | None
    timestamp: str
    providers: list[str]
    symbols: list[str]
    sentiment: float | None
    symbol_sentiment: float | None
    relevance: float | None
    language: str | None
    replaces: list[str]


class BookItem(BaseModel):
    """One symbol in an orderbook data message: a ``snapshot`` of the top ``depth`` levels
    a side, or a ``delta`` against the book the client holds (a size of 0 removes a level),
    ``seq`` counting 1, 2, 3... per symbol and ``checksum`` Kraken's CRC32 of the top 10
    levels a side of the client's book after it (docs/protocol.md). A level is
    ``[price, size]``, in a consolidated book ``[price, size, [size of each of venues]]``."""

    action: Literal["snapshot", "delta"]
    symbol: str
    venue: str
    depth: int
    seq: int
    timestamp: str
    checksum: int
    bids: list[list[str | list[str]]]
    asks: list[list[str | list[str]]]
    venues: list[str] | None = None
    crossed: dict[Literal["bids", "asks"], list[str]] | None = None


class AlertSource(BaseModel):
    """The input record an alert fired on: its place in the log."""

    topic: str
    partition: int
    offset: int


class AlertItem(BaseModel):
    """A fired alert of the ``alerts`` stream; ``alert_id`` is the same on every delivery."""

    alert_id: str
    rule_id: str
    kind: str
    subject: str
    time: str
    values: dict[str, float]
    message: str
    source: AlertSource


class DataMessage(BaseModel):
    """New values of a subscription; ``seq`` counts 1, 2, 3... per subscription."""

    type: Literal["data"]
    stream_type: AnyStream
    subscription_id: str
    timestamp: str
    seq: int
    replay: bool | None = None
    data: list[QuoteItem | PriceItem | OhlcvItem | TradeItem | NewsEntry | BookItem | AlertItem]


class ReplayComplete(BaseModel):
    """A replay with an ``end`` sent all of its data; its subscription has ended."""

    type: Literal["replay_complete"]
    stream_type: StreamType
    subscription_id: str
    start: str
    end: str
    timestamp: str


class UnsubscribeAck(BaseModel):
    """Says which symbols left and which subscriptions ended."""

    type: Literal["unsubscribe_ack"]
    stream_type: AnyStream
    symbols: list[str]
    subscription_ids: list[str]
    timestamp: str


class Heartbeat(BaseModel):
    """Sent every FIML_HEARTBEAT_INTERVAL seconds."""

    type: Literal["heartbeat"]
    timestamp: str
    active_subscriptions: int


class Pong(BaseModel):
    """The answer to a ping."""

    type: Literal["pong"]
    timestamp: str


class Status(BaseModel):
    """A subscribed symbol went stale (no update for a while) or came back, or a provider of
    it reported DOWN or DEGRADED, or UP again (``provider`` names it)."""

    type: Literal["status"]
    symbol: str
    status: Literal["stale", "live", "provider_down", "provider_degraded", "provider_up"]
    message: str
    timestamp: str
    provider: str | None = None


class ErrorMessage(BaseModel):
    """Something the client sent, or did, could not be served."""

    type: Literal["error"]
    error_code: ErrorCode
    message: str
    timestamp: str


class AlertAck(BaseModel):
    """Confirms an ``alert_create`` or ``alert_delete``, with the rule as it now is."""

    type: Literal["alert_ack"]
    action: Literal["created", "deleted"]
    request_id: str | None
    rule: dict[str, Any]
    timestamp: str


SERVER_MESSAGES: tuple[type[BaseModel], ...] = (
    SubscriptionAck,
    DataMessage,
    ReplayComplete,
    UnsubscribeAck,
    Heartbeat,
    Pong,
    Status,
    ErrorMessage,
    AlertAck,
)
