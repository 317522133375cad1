"""A connection's protocol state: its subscriptions and the rules for changing them (pure).

:meth:`SessionState.subscribe` and :meth:`SessionState.unsubscribe` either change the
subscriptions or raise :class:`~gateway.protocol.ProtocolError` with the code to answer;
``gateway/session.py`` does the rest (acks, pacing, replays, the client's socket).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.admission import Slots
from gateway.limits import SlidingLimit
from gateway.protocol import (
    ErrorCode,
    ProtocolError,
    StreamType,
    SubscribeRequest,
    UnsubscribeRequest,
)
from gateway.subscription import Subscription
from runtime.catalog import Catalog

QUOTE_STREAMS = frozenset({StreamType.PRICE, StreamType.QUOTE, StreamType.MULTI_ASSET})


@dataclass(frozen=True)
class Unsubscribed:
    """What an unsubscribe changed: the symbols it removed, the subscriptions it ended."""

    symbols: list[str]
    ended: list[Subscription]


@dataclass
class SessionState:
    """The subscriptions of one connection, within its caps (0: no cap); ``new_symbols``
    paces the symbols it adds that it does not hold yet (None: no limit)."""

    catalog: Catalog
    max_subscriptions: int = 0
    max_replays: int = 0
    max_symbols: int = 0
    replay_slots: Slots = field(default_factory=lambda: Slots(0))
    new_symbols: SlidingLimit | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)

    def subscribe(self, request: SubscribeRequest, now: float = 0.0) -> Subscription:
        """Add the subscription ``request`` asks for, or raise ProtocolError: a symbol no
        provider serves, a cap reached, or too many new symbols by ``now`` (seconds,
        monotonic)."""
        unknown = [symbol for symbol in request.symbols if not self.catalog.can_serve(symbol)]
        if unknown:
            raise ProtocolError(
                ErrorCode.SUBSCRIPTION_ERROR,
                f"unknown symbol {', '.join(unknown)}: no provider serves it",
            )
        cap = self.max_subscriptions
        if cap and len(self.subscriptions) >= cap:
            raise ProtocolError(
                ErrorCode.SUBSCRIPTION_ERROR,
                f"Failed to create subscription: at most {cap} per connection",
            )
        held = {symbol for sub in self.subscriptions.values() for symbol in sub.symbols}
        if self.max_symbols and len(held.union(request.symbols)) > self.max_symbols:
            raise ProtocolError(
                ErrorCode.SUBSCRIPTION_ERROR,
                f"Failed to create subscription: at most {self.max_symbols} symbols per connection",
            )
        added = len(set(request.symbols) - held)
        if self.new_symbols is not None and added and not self.new_symbols.take(now, added):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.new_symbols.limit} new symbols per minute on this "
                "connection; retry later",
            )
        replay = request.start is not None
        replays = sum(sub.replay for sub in self.subscriptions.values())
        if replay and self.max_replays and replays >= self.max_replays:
            raise ProtocolError(
                ErrorCode.REPLAY_ERROR,
                f"Failed to create subscription: at most {self.max_replays} replays per connection",
            )
        if replay and not self.replay_slots.take():
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"{self.replay_slots.limit} replays already run on this gateway; retry later",
            )
        subscription = Subscription(
            request.stream_type,
            list(request.symbols),
            request.interval_ms,
            request.timeframe,
            replay=replay,
        )
        if request.stream_type == StreamType.ORDERBOOK:
            subscription.depth = request.depth or subscription.depth
            subscription.venue = request.venue or subscription.venue
        self.subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, request: UnsubscribeRequest) -> Unsubscribed:
        """Remove the symbols ``request`` names (all, for null) from the subscriptions of its
        stream type; a subscription left without symbols ends. ProtocolError if none of them
        had any of those symbols (nothing changes then)."""
        removed: dict[str, None] = {}
        ended = []
        for subscription in list(self.subscriptions.values()):
            if subscription.stream_type != request.stream_type:
                continue
            if request.symbols is None:
                removed.update(dict.fromkeys(subscription.symbols))
                subscription.symbols = []
            else:
                removed.update(dict.fromkeys(subscription.remove_symbols(request.symbols)))
            if not subscription.symbols:
                del self.subscriptions[subscription.id]
                ended.append(subscription)
        if not removed:
            wanted = "any symbol" if request.symbols is None else ", ".join(request.symbols)
            raise ProtocolError(
                ErrorCode.UNSUBSCRIBE_ERROR,
                f"Failed to unsubscribe: no {request.stream_type.value} subscription has {wanted}",
            )
        return Unsubscribed(list(removed), ended)

    def end(self, subscription_id: str) -> None:
        """Forget a subscription that ended by itself (a replay with an end)."""
        self.subscriptions.pop(subscription_id, None)

    def quote_symbols(self) -> set[str]:
        """The symbols of the price, quote and multi_asset subscriptions."""
        return {
            symbol
            for sub in self.subscriptions.values()
            if sub.stream_type in QUOTE_STREAMS
            for symbol in sub.symbols
        }
