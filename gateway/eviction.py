"""Forgets the symbols nobody wants: every store of a gateway drops a symbol that no
subscription of this gateway holds and of which no data came for ``symbol_evict_seconds``
(docs/invariants.md, "Per-symbol state")."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.shared import Shared
from runtime.metrics import SYMBOLS_HELD

log = logging.getLogger("fiml.gateway.eviction")

MAX_PERIOD = 30.0


async def evict_idle_symbols(shared: Shared) -> None:
    """Sweep the stores until cancelled, a few times per eviction span."""
    idle = shared.settings.symbol_evict_seconds
    market = shared.market
    SYMBOLS_HELD.labels("gateway").set_function(lambda: len(market.touched))
    if not idle:
        return
    while True:
        await asyncio.sleep(min(idle / 4, MAX_PERIOD))
        gone = market.evict(time.monotonic(), idle, shared.registry.demand())
        if gone:
            log.info("forgot %d symbols without demand or data", len(gone))
