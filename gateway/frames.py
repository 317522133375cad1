"""The frames a connection sends besides data and errors, as JSON text (docs/protocol.md).

Data messages are built by :meth:`gateway.subscription.Subscription.data_message` around
items encoded once, error frames by :func:`gateway.protocol.error_frame`.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from gateway.protocol import StreamType, SubscribeRequest
from gateway.providers import Notice, notice_message
from gateway.subscription import Subscription
from runtime.clock import now_iso
from schemas.records import ProviderStatus
from schemas.times import datetime_to_iso


def _json(message: dict[str, object]) -> str:
    return orjson.dumps(message).decode()


def replay_ack_fields(request: SubscribeRequest) -> dict[str, object]:
    """What a subscription_ack of a replay adds: its start, end and speed."""
    assert request.start is not None
    return {
        "start": datetime_to_iso(request.start),
        "end": None if request.end is None else datetime_to_iso(request.end),
        "speed": request.speed,
    }


def subscription_ack(subscription: Subscription, request: SubscribeRequest) -> str:
    """The ack of a new subscription: with its timeframe (ohlcv) and its range (replay)."""
    ack: dict[str, object] = {
        "type": "subscription_ack",
        "stream_type": subscription.stream_type.value,
        "symbols": subscription.symbols,
        "subscription_id": subscription.id,
        "interval_ms": subscription.interval_ms,
        "timestamp": now_iso(),
    }
    if subscription.stream_type == StreamType.OHLCV:
        ack["timeframe"] = subscription.timeframe
    if subscription.stream_type == StreamType.ORDERBOOK:
        ack.update(depth=subscription.depth, venue=subscription.venue)
    if subscription.replay:
        ack.update(replay_ack_fields(request))
    return _json(ack)


def unsubscribe_ack(stream_type: StreamType, symbols: list[str], ended: list[str]) -> str:
    """The symbols an unsubscribe removed and the subscriptions it ended."""
    return _json(
        {
            "type": "unsubscribe_ack",
            "stream_type": stream_type.value,
            "symbols": symbols,
            "subscription_ids": ended,
            "timestamp": now_iso(),
        }
    )


def replay_complete(subscription: Subscription, request: SubscribeRequest) -> str:
    """The end of a replay with an ``end``: all of its data was sent."""
    assert request.start is not None and request.end is not None
    return _json(
        {
            "type": "replay_complete",
            "stream_type": subscription.stream_type.value,
            "subscription_id": subscription.id,
            "start": datetime_to_iso(request.start),
            "end": datetime_to_iso(request.end),
            "timestamp": now_iso(),
        }
    )


def pong() -> str:
    """The answer to a ping."""
    return _json({"type": "pong", "timestamp": now_iso()})


def heartbeat(active_subscriptions: int) -> str:
    """The periodic heartbeat."""
    return _json(
        {"type": "heartbeat", "timestamp": now_iso(), "active_subscriptions": active_subscriptions}
    )


def staleness(symbol: str, stale: bool, limit: float) -> str:
    """A subscribed symbol went stale (no update for ``limit`` seconds) or came back."""
    message = f"no update for {limit:g} s: no provider is fresh" if stale else "updates resumed"
    return _json(
        {
            "type": "status",
            "symbol": symbol,
            "status": "stale" if stale else "live",
            "message": message,
            "timestamp": now_iso(),
        }
    )


def provider_notice(notice: Notice, statuses: Mapping[str, ProviderStatus]) -> str:
    """A provider of a subscribed symbol changed state (``gateway/providers.py``)."""
    return _json({**notice_message(notice, statuses), "timestamp": now_iso()})
