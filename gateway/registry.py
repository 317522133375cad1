"""Which connections are open and what they subscribe to, for GET /ws/connections."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from gateway.subscription import Subscription


class HasSubscriptions(Protocol):
    subscriptions: dict[str, Subscription]


class ConnectionRegistry:
    """The open connections of this gateway process."""

    def __init__(self) -> None:
        self.connections: set[HasSubscriptions] = set()

    def add(self, connection: HasSubscriptions) -> None:
        self.connections.add(connection)

    def remove(self, connection: HasSubscriptions) -> None:
        self.connections.discard(connection)

    def subscription_count(self) -> int:
        """How many subscriptions the open connections have."""
        return sum(len(connection.subscriptions) for connection in self.connections)

    def demand(self) -> Counter[str]:
        """Per symbol, how many subscriptions include it."""
        return Counter(symbol for connection in self.connections
                       for subscription in connection.subscriptions.values()
                       for symbol in subscription.symbols)

    def summary(self) -> dict[str, object]:
        """Counts as the spec's monitoring endpoint shows them."""
        subscriptions = [sub for conn in self.connections for sub in conn.subscriptions.values()]
        symbols = sorted({symbol for sub in subscriptions for symbol in sub.symbols})
        return {
            "active_connections": len(self.connections),
            "total_subscriptions": len(subscriptions),
            "subscribed_symbols": symbols,
        }
