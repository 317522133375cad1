"""The synthetic market as a provider: batches on a fixed cadence, with no network at all.

Its venues also show order books of the crypto symbols (``ingest/books/synthetic_books.py``),
``FIML_BOOK_DEPTH`` levels a side, one message per venue and symbol per batch."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.errors import KafkaError

from ingest.books.synthetic_books import SyntheticBooks
from ingest.providers import Emit
from ingest.synthetic import SyntheticMarket
from ingest.venues import DEFAULT_VENUES, with_faults
from runtime.clock import now_micros
from runtime.intake import decode_or_skip
from runtime.kafka import read_tail
from runtime.settings import Settings
from schemas import RawTick
from schemas.topics import TopicRole

log = logging.getLogger("fiml.ingest.synthetic")

# Raw records read back per partition to find where the last run left each symbol: about
# 20 s of the default market (13 symbols, 3 venues, 10 Hz, 6 partitions).
TAIL_RECORDS = 2000
RESUME_TIMEOUT_S = 15.0
# Each synthetic book is sent whole again this often, so a log cut by retention has books.
BOOK_SNAPSHOT_EVERY_US = 60_000_000


class SyntheticProvider:
    """Every synthetic venue of ``settings``, one batch each ``period`` seconds."""

    name = "synthetic"

    def __init__(self, settings: Settings, period: float = 0.1) -> None:
        self.settings = settings
        self.configured = frozenset(settings.symbols)
        venues = with_faults(DEFAULT_VENUES, settings.synthetic_faults)
        self.market = SyntheticMarket(
            settings.symbols,
            seed=settings.synthetic_seed,
            tick_hz=settings.synthetic_tick_hz,
            venues=venues,
            trend_bps=settings.synthetic_trend_bps,
        )
        self.books = SyntheticBooks(
            venues,
            seed=settings.synthetic_seed,
            depth=settings.book_depth,
            snapshot_every_us=BOOK_SNAPSHOT_EVERY_US,
        )
        self.period = period

    def set_demand(self, extra: frozenset[str]) -> None:
        """Simulate the demanded symbols too: with ``synthetic_any_symbol`` any well-formed
        symbol gets a walk; without, only the configured ones are simulated."""
        if not self.settings.synthetic_any_symbol:
            extra = frozenset()
        for symbol in extra:
            self.market.add_symbol(symbol)
        for symbol in list(self.market.prices):
            if symbol not in extra and symbol not in self.configured:
                self.market.remove_symbol(symbol)

    async def resume(self) -> None:
        """Continue the market the last run left in the raw topic: each symbol from its last
        synthetic quote (unless ``FIML_SYNTHETIC_RESUME`` is off), and sequence numbers after
        both the last ones there and the clock in microseconds, so no seq or trade id of an
        earlier run comes again. Without the topic the market starts afresh."""
        venues = set(self.market.state)
        last: dict[str, RawTick] = {}
        newest_seq = 0
        try:
            records = await asyncio.wait_for(
                read_tail(self.settings, self.settings.topic(TopicRole.RAW), TAIL_RECORDS),
                RESUME_TIMEOUT_S,
            )
        except (KafkaError, OSError, TimeoutError) as error:
            log.warning(
                "synthetic market starts afresh: the raw topic could not be read (%s)", error
            )
            records = []
        for record in records:
            tick = decode_or_skip(record, RawTick)
            if tick is None or tick.provider not in venues:
                continue
            newest_seq = max(newest_seq, tick.seq)
            held = last.get(tick.symbol)
            if tick.kind == "QUOTE" and (held is None or tick.ts_event >= held.ts_event):
                last[tick.symbol] = tick
        if not self.settings.synthetic_resume:
            last = {}
        self.market.resume(last.values(), max(now_micros(), newest_seq + 1))
        if last:
            log.info("synthetic market continues %d symbols from the log", len(last))

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Continue the last run's market, then advance it to the wall clock and emit what it
        reported, until ``stop``."""
        await self.resume()
        loop = asyncio.get_running_loop()
        next_step = loop.time()
        while not stop.is_set():
            now = now_micros()
            ticks, statuses = self.market.advance(now)
            crypto = {symbol: p for symbol, p in self.market.prices.items() if "/" in symbol}
            await emit([*statuses, *ticks, *self.books.advance(now, crypto)])
            next_step += self.period
            delay = next_step - loop.time()
            if delay < 0:
                next_step = loop.time()
                delay = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
