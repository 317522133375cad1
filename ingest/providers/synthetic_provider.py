"""The synthetic market as a provider: batches on a fixed cadence, with no network at all."""

from __future__ import annotations

import asyncio
import contextlib

from fiml.runtime import now_micros
from fiml.settings import Settings
from ingest.providers import Emit
from ingest.synthetic import DEFAULT_VENUES, SyntheticMarket, with_faults


class SyntheticProvider:
    """Every synthetic venue of ``settings``, one batch each ``period`` seconds."""

    name = "synthetic"

    def __init__(self, settings: Settings, period: float = 0.1) -> None:
        self.configured = frozenset(settings.synthetic_symbols)
        venues = with_faults(DEFAULT_VENUES, settings.synthetic_faults)
        self.market = SyntheticMarket(settings.synthetic_symbols, seed=settings.synthetic_seed,
                                      tick_hz=settings.synthetic_tick_hz, venues=venues)
        self.period = period

    def set_demand(self, extra: frozenset[str]) -> None:
        """Simulate the demanded symbols too (any well-formed symbol gets a walk)."""
        for symbol in extra:
            self.market.add_symbol(symbol)
        for symbol in list(self.market.prices):
            if symbol not in extra and symbol not in self.configured:
                self.market.remove_symbol(symbol)

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Advance the market to the wall clock and emit what it reported, until ``stop``."""
        loop = asyncio.get_running_loop()
        next_step = loop.time()
        while not stop.is_set():
            ticks, statuses = self.market.advance(now_micros())
            await emit([*statuses, *ticks])
            next_step += self.period
            delay = next_step - loop.time()
            if delay < 0:
                next_step = loop.time()
                delay = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
