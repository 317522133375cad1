"""The connection registry (gateway/registry.py) counts the demand per symbol again only
after a connection said its subscriptions changed, or one came or went; the one watcher
(gateway/watcher.py) looks at every open connection each period."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from gateway.protocol import StreamType
from gateway.registry import ConnectionRegistry
from gateway.subscription import Subscription
from gateway.watcher import watch_connections


class Held:
    """A connection as the registry sees it."""

    def __init__(self, *symbol_lists: list[str]) -> None:
        subscriptions = [Subscription(StreamType.PRICE, symbols, 1000) for symbols in symbol_lists]
        self.subscriptions = {sub.id: sub for sub in subscriptions}
        self.watched: list[float] = []

    def watch(self, now: float) -> None:
        self.watched.append(now)


def test_demand_is_counted_again_after_a_change_only() -> None:
    registry = ConnectionRegistry()
    first, second = Held(["AAPL", "MSFT"], ["AAPL"]), Held(["BTC/USDT"])
    registry.add(first)
    registry.add(second)
    assert registry.demand() == Counter({"AAPL": 2, "MSFT": 1, "BTC/USDT": 1})
    registry.demand()["AAPL"] = 99  # a copy: the caller may change it
    (subscription, _) = first.subscriptions.values()
    subscription.symbols = ["TSLA"]
    assert registry.demand()["AAPL"] == 2  # not told yet: the counts of the last change
    registry.changed()
    assert registry.demand() == Counter({"AAPL": 1, "TSLA": 1, "BTC/USDT": 1})
    registry.remove(second)
    assert registry.demand() == Counter({"AAPL": 1, "TSLA": 1})
    assert registry.summary() == {
        "active_connections": 1,
        "total_subscriptions": 2,
        "subscribed_symbols": ["AAPL", "TSLA"],
    }


async def test_the_watcher_looks_at_every_open_connection_each_period() -> None:
    registry = ConnectionRegistry()
    connections = [Held(["AAPL"]) for _ in range(3)]
    for connection in connections:
        registry.add(connection)
    watcher = asyncio.create_task(watch_connections(registry, period=0.02))
    await asyncio.sleep(0.1)
    registry.remove(connections[0])
    left_at = len(connections[0].watched)
    await asyncio.sleep(0.1)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    assert left_at >= 2 and len(connections[0].watched) == left_at
    for connection in connections[1:]:
        assert len(connection.watched) > left_at
        assert connection.watched == sorted(connection.watched)
