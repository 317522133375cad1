"""The client protocol (docs/protocol.md): message models, parsing and error frames.

Parsing is pure: :func:`parse_client_message` turns a text frame into a typed message or
raises :class:`ProtocolError` with the error code and a message saying what was wrong.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.alert_protocol import (
    ALERTS_STREAM,
    AlertCreate,
    AlertDelete,
    AlertMessage,
    AlertsSubscribe,
    AlertsUnsubscribe,
)
from runtime.clock import now_iso
from schemas.symbols import InvalidSymbol, canonical_symbol
from schemas.times import as_utc

MAX_SYMBOLS = 50
MIN_INTERVAL_MS = 100
MAX_INTERVAL_MS = 60_000
DEFAULT_INTERVAL_MS = 1000
MAX_REPLAY_SPEED = 1000
REPLAY_FIELDS = frozenset({"start", "end", "speed"})


class ErrorCode(StrEnum):
    """Error codes of error frames."""

    INVALID_JSON = "INVALID_JSON"
    INVALID_MESSAGE_TYPE = "INVALID_MESSAGE_TYPE"
    SUBSCRIPTION_ERROR = "SUBSCRIPTION_ERROR"
    UNSUBSCRIBE_ERROR = "UNSUBSCRIBE_ERROR"
    PROCESSING_ERROR = "PROCESSING_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    UNAUTHORIZED = "UNAUTHORIZED"
    SLOW_CONSUMER = "SLOW_CONSUMER"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    REPLAY_ERROR = "REPLAY_ERROR"
    ALERT_ERROR = "ALERT_ERROR"


class CloseCode(IntEnum):
    """WebSocket close codes the gateway ends a connection with."""

    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    TRY_AGAIN_LATER = 1013
    UNAUTHORIZED = 4401


class StreamType(StrEnum):
    """What a subscription streams."""

    PRICE = "price"
    OHLCV = "ohlcv"
    QUOTE = "quote"
    TRADES = "trades"
    MULTI_ASSET = "multi_asset"
    NEWS = "news"
    ORDERBOOK = "orderbook"


AssetType = Literal["equity", "crypto", "forex", "commodity", "index", "etf"]
MarketCode = Literal["US", "UK", "EU", "JP", "CN", "HK", "CRYPTO", "GLOBAL"]
DataType = Literal["price", "ohlcv", "quote", "trades", "fundamentals"]
BookDepth = Literal[10, 25, 50]
# A venue of an orderbook subscription: a provider's name, or "consolidated".
VENUE_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"
Timeframe = Literal["1s", "1m", "5m", "15m", "1h", "1d"]


class ProtocolError(Exception):
    """A client message the gateway refuses, with the error code to answer it with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _canonical_symbols(values: list[str]) -> tuple[str, ...]:
    symbols: dict[str, None] = {}
    for value in values:
        try:
            symbols[canonical_symbol(value)] = None
        except InvalidSymbol as error:
            raise ValueError(str(error)) from None
    return tuple(symbols)


class SubscribeRequest(BaseModel):
    """``{"type": "subscribe", ...}``: start streaming ``stream_type`` for ``symbols``."""

    model_config = ConfigDict(frozen=True)

    type: Literal["subscribe"]
    stream_type: StreamType
    symbols: Annotated[list[str], Field(min_length=1, max_length=MAX_SYMBOLS)]
    asset_type: AssetType | None = None
    market: MarketCode | None = None
    interval_ms: Annotated[int, Field(ge=MIN_INTERVAL_MS, le=MAX_INTERVAL_MS, strict=True)] = (
        DEFAULT_INTERVAL_MS
    )
    data_type: DataType | None = None
    timeframe: Timeframe = "1m"
    start: datetime | None = None
    end: datetime | None = None
    speed: Annotated[float, Field(ge=0, le=MAX_REPLAY_SPEED)] = 1.0
    depth: BookDepth | None = None
    venue: Annotated[str, Field(pattern=VENUE_PATTERN)] | None = None

    @field_validator("symbols")
    @classmethod
    def _fold_symbols(cls, values: list[str]) -> list[str]:
        return list(_canonical_symbols(values))

    @model_validator(mode="after")
    def _book_fields(self) -> SubscribeRequest:
        orderbook = self.stream_type == StreamType.ORDERBOOK
        if not orderbook and (self.depth is not None or self.venue is not None):
            raise ValueError("depth and venue are for the orderbook stream type only")
        return self

    @field_validator("start", "end")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return value
        start = info.data.get("start")
        if start is None:
            raise ValueError("end needs a start")
        if value < start:
            raise ValueError("end is before start")
        return value


class UnsubscribeRequest(BaseModel):
    """``{"type": "unsubscribe", ...}``: end ``symbols`` (or, with null, all) of a stream type."""

    model_config = ConfigDict(frozen=True)

    type: Literal["unsubscribe"]
    stream_type: StreamType
    symbols: Annotated[list[str], Field(min_length=1)] | None = None

    @field_validator("symbols")
    @classmethod
    def _fold_symbols(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else list(_canonical_symbols(values))


class PingRequest(BaseModel):
    """``{"type": "ping"}``, answered by ``{"type": "pong"}``."""

    type: Literal["ping"]


ClientMessage = SubscribeRequest | UnsubscribeRequest | PingRequest | AlertMessage
_MODELS: dict[str, tuple[type[BaseModel], ErrorCode]] = {
    "subscribe": (SubscribeRequest, ErrorCode.SUBSCRIPTION_ERROR),
    "unsubscribe": (UnsubscribeRequest, ErrorCode.UNSUBSCRIBE_ERROR),
    "ping": (PingRequest, ErrorCode.PROCESSING_ERROR),
    "alert_create": (AlertCreate, ErrorCode.ALERT_ERROR),
    "alert_delete": (AlertDelete, ErrorCode.ALERT_ERROR),
}
_ALERT_STREAM_MODELS: dict[str, type[BaseModel]] = {
    "subscribe": AlertsSubscribe,
    "unsubscribe": AlertsUnsubscribe,
}


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse and validate one client frame, or raise :class:`ProtocolError`."""
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"malformed JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ProtocolError(
            ErrorCode.INVALID_JSON, f"a message must be a JSON object, got {_json_kind(payload)}"
        )
    return validate_message(payload)


def validate_message(payload: dict[str, Any]) -> ClientMessage:
    """Validate a decoded JSON object as a client message, or raise :class:`ProtocolError`."""
    kind = payload.get("type")
    entry = _MODELS.get(kind) if isinstance(kind, str) else None
    if entry is None:
        known = ", ".join(_MODELS)
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE_TYPE,
            f"unknown message type {kind!r}; expected one of: {known}",
        )
    model, code = entry
    if payload.get("stream_type") == ALERTS_STREAM and kind in _ALERT_STREAM_MODELS:
        model, code = _ALERT_STREAM_MODELS[str(kind)], ErrorCode.ALERT_ERROR
    try:
        return cast(ClientMessage, model.model_validate(payload))
    except ValidationError as error:
        if any(item["loc"][:1] and item["loc"][0] in REPLAY_FIELDS for item in error.errors()):
            code = ErrorCode.REPLAY_ERROR
        raise ProtocolError(code, _describe(str(kind), error)) from None


def _describe(kind: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False)[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "message"
        problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    action = "create subscription" if kind == "subscribe" else f"process {kind}"
    return f"Failed to {action}: " + "; ".join(problems)


def _json_kind(value: object) -> str:
    return {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def error_frame(code: ErrorCode, message: str) -> str:
    """An error frame (docs/protocol.md, "Errors and close codes")."""
    return orjson.dumps(
        {
            "type": "error",
            "error_code": code.value,
            "message": message,
            "timestamp": now_iso(),
        }
    ).decode()
