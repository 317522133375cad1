"""Which connections are open and what they subscribe to: for GET /ws/connections, the
demand publisher and the watcher."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from gateway.subscription import Subscription


class Connection(Protocol):
    """An open connection as the registry and the watcher see it."""

    @property
    def subscriptions(self) -> dict[str, Subscription]: ...

    def watch(self, now: float) -> None: ...


class ConnectionRegistry:
    """The open connections of this gateway process.

    A connection calls :meth:`changed` whenever its subscriptions or their symbols change,
    so the demand is counted again only after a change, not on every ask.
    """

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.counted: Counter[str] | None = None

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.counted = None

    def remove(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self.counted = None

    def changed(self) -> None:
        """Some connection's subscriptions changed."""
        self.counted = None

    def subscription_count(self) -> int:
        """How many subscriptions the open connections have."""
        return sum(len(connection.subscriptions) for connection in self.connections)

    def demand(self) -> Counter[str]:
        """Per symbol, how many subscriptions include it."""
        if self.counted is None:
            self.counted = Counter(
                symbol
                for connection in self.connections
                for subscription in connection.subscriptions.values()
                for symbol in subscription.symbols
            )
        return self.counted.copy()

    def summary(self) -> dict[str, object]:
        """Counts as ``GET /ws/connections`` shows them."""
        subscriptions = [sub for conn in self.connections for sub in conn.subscriptions.values()]
        symbols = sorted({symbol for sub in subscriptions for symbol in sub.symbols})
        return {
            "active_connections": len(self.connections),
            "total_subscriptions": len(subscriptions),
            "subscribed_symbols": symbols,
        }
