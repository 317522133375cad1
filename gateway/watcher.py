"""The gateway's one watcher over all its connections, instead of a task per connection.

Every :data:`WATCH_PERIOD` it lets each open connection check itself: writes blocked past
``slow_consumer_seconds``, symbols gone stale or live again, provider status changes (see
``ClientSession.watch`` in ``gateway/session.py``).
"""

from __future__ import annotations

import asyncio
import time

from gateway.registry import ConnectionRegistry

WATCH_PERIOD = 0.5


async def watch_connections(registry: ConnectionRegistry, period: float = WATCH_PERIOD) -> None:
    """Watch every connection of ``registry`` each ``period`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(period)
        now = time.monotonic()
        for connection in list(registry.connections):
            connection.watch(now)
