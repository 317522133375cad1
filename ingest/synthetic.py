"""A synthetic market: seeded random walks seen through several simulated venues.

Each symbol follows a geometric random walk. Each venue reports it with its own noise,
latency and spread, sometimes prints trades, and now and then goes down for a while, so
the arbitration engine has real work to do offline. Everything is a pure function of the
seed and the sequence of times passed to :meth:`SyntheticMarket.advance`.

A run continues the market a previous run left in the log (:meth:`SyntheticMarket.resume`:
each symbol from its last price, sequence numbers after the last ones), so a restart looks
like a market that kept trading. ``trend_bps`` adds a steady drift per second (a setting for
demos and for tests of a market that moved).

The venues, and the faults that can be injected into them, are ``ingest/venues.py``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from ingest.venues import DEFAULT_VENUES, OUTLIER_FACTOR, Venue
from schemas.records import ProviderStatus, RawTick

MICROS = 1_000_000
STATUS_EVERY_US = 5 * MICROS

STARTING_PRICES = {
    "AAPL": 190.0,
    "GOOGL": 170.0,
    "MSFT": 420.0,
    "TSLA": 250.0,
    "NVDA": 130.0,
    "AMZN": 185.0,
    "META": 500.0,
    "SPY": 560.0,
    "QQQ": 480.0,
    "^GSPC": 5600.0,
    "BTC/USDT": 65000.0,
    "ETH/USDT": 3200.0,
    "SOL/USDT": 150.0,
    "XRP/USDT": 0.6,
    "DOGE/USDT": 0.15,
}


def starting_price(symbol: str) -> float:
    """The walk's first price: a familiar level for known symbols, a stable one otherwise."""
    known = STARTING_PRICES.get(symbol)
    if known is not None:
        return known
    return 10.0 + sum(symbol.encode()) % 490


@dataclass
class _VenueState:
    down_until_us: int = 0
    last_status_us: int = -STATUS_EVERY_US
    was_up: bool | None = None
    seq: int = 0
    volume: dict[str, float] = field(default_factory=dict)


class SyntheticMarket:
    """The simulated market for a set of symbols.

    ``tick_hz`` is the number of quote ticks per second per symbol per venue.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int,
        tick_hz: float,
        venues: Iterable[Venue] = DEFAULT_VENUES,
        trend_bps: float = 0.0,
    ) -> None:
        self.random = random.Random(seed)
        self.tick_hz = tick_hz
        self.trend = trend_bps / 10_000
        self.venues = tuple(venues)
        self.prices = {symbol: starting_price(symbol) for symbol in symbols}
        self.reference = dict(self.prices)
        self.state = {venue.name: _VenueState() for venue in self.venues}
        self.credit = {venue.name: 0.0 for venue in self.venues}
        self.now_us: int | None = None
        self.start_us: int | None = None

    def add_symbol(self, symbol: str) -> None:
        """Start simulating one more symbol."""
        if symbol not in self.prices:
            self.prices[symbol] = self.reference[symbol] = starting_price(symbol)

    def resume(self, last: Iterable[RawTick], first_seq: int) -> None:
        """Continue from a previous run: each symbol from the price (and reference price) of
        its last tick in ``last``, and every venue's sequence numbers (and so its trade ids)
        from ``first_seq``, which the caller chooses after every earlier one."""
        for tick in last:
            if tick.symbol in self.prices:
                self.prices[tick.symbol] = tick.price
                if tick.reference_price is not None:
                    self.reference[tick.symbol] = tick.reference_price
        for state in self.state.values():
            state.seq = first_seq - 1

    def remove_symbol(self, symbol: str) -> None:
        """Stop simulating a symbol."""
        self.prices.pop(symbol, None)
        self.reference.pop(symbol, None)

    def advance(self, now_us: int) -> tuple[list[RawTick], list[ProviderStatus]]:
        """Move the market to ``now_us`` and return what the venues reported meanwhile."""
        previous = self.now_us if self.now_us is not None else now_us - int(MICROS / self.tick_hz)
        self.now_us = now_us
        if self.start_us is None:
            self.start_us = now_us
        elapsed = max(0.0, (now_us - previous) / MICROS)
        self._walk(elapsed)
        ticks: list[RawTick] = []
        statuses: list[ProviderStatus] = []
        for venue in self.venues:
            up = self._update_outage(venue, now_us, elapsed)
            status = self._status(venue, now_us, up)
            if status is not None:
                statuses.append(status)
            self.credit[venue.name] += elapsed * self.tick_hz
            rounds = int(self.credit[venue.name])
            self.credit[venue.name] -= rounds
            if up:
                for _ in range(rounds):
                    for symbol in self.prices:
                        ticks.extend(self._observe(venue, symbol, now_us))
        return ticks, statuses

    def _walk(self, elapsed: float) -> None:
        for symbol, price in self.prices.items():
            sigma = 0.0008 if "/" in symbol else 0.0003
            shock = self.random.gauss(self.trend * elapsed, sigma * math.sqrt(max(elapsed, 1e-6)))
            self.prices[symbol] = price * math.exp(shock)

    def _update_outage(self, venue: Venue, now_us: int, elapsed: float) -> bool:
        state = self.state[venue.name]
        if venue.down_every_s > 0:
            assert self.start_us is not None, "set by the first advance"
            phase = (now_us - self.start_us) % int(venue.down_every_s * MICROS)
            return phase < int((venue.down_every_s - venue.outage_seconds) * MICROS)
        if now_us < state.down_until_us:
            return False
        chance = venue.outages_per_hour / 3600 * elapsed
        if self.random.random() < chance:
            state.down_until_us = now_us + int(venue.outage_seconds * MICROS)
            return False
        return True

    def _status(self, venue: Venue, now_us: int, up: bool) -> ProviderStatus | None:
        state = self.state[venue.name]
        if state.was_up == up and now_us - state.last_status_us < STATUS_EVERY_US:
            return None
        state.was_up = up
        state.last_status_us = now_us
        if up:
            return ProviderStatus(venue.name, now_us, "UP", latency_ms=venue.latency_ms)
        return ProviderStatus(
            venue.name, now_us, "DOWN", error_kind="outage", message="simulated outage"
        )

    def _observe(self, venue: Venue, symbol: str, now_us: int) -> list[RawTick]:
        state = self.state[venue.name]
        rng = self.random
        true_price = self.prices[symbol]
        tick = _price_tick(true_price)
        price = _round_price(true_price * (1 + rng.gauss(0.0, venue.noise_bps / 10_000)))
        if venue.outlier_probability and rng.random() < venue.outlier_probability:
            price = _round_price(price * (1 + rng.choice((-1, 1)) * OUTLIER_FACTOR))
        half_spread = price * venue.spread_bps / 20_000
        bid = math.floor((price - half_spread) / tick) * tick
        ask = max(math.ceil((price + half_spread) / tick) * tick, bid + tick)
        latency_us = int(rng.expovariate(1.0 / venue.latency_ms) * 1000)
        ts_event = now_us - latency_us - int(venue.lag_ms * 1000)
        state.seq += 1
        ticks = []
        if rng.random() < venue.trade_probability:
            size = round(rng.expovariate(1.0) * (0.5 if "/" in symbol else 100), 4) or 1.0
            state.volume[symbol] = state.volume.get(symbol, 0.0) + size
            ticks.append(
                RawTick(
                    symbol,
                    venue.name,
                    "TRADE",
                    ts_event,
                    now_us,
                    state.seq,
                    price,
                    trade_id=f"{venue.name}-{state.seq}",
                    trade_size=size,
                    side="buy" if rng.random() < 0.5 else "sell",
                )
            )
            state.seq += 1
        ticks.append(
            RawTick(
                symbol,
                venue.name,
                "QUOTE",
                ts_event,
                now_us,
                state.seq,
                price,
                bid=_round_price(bid),
                ask=_round_price(ask),
                bid_size=round(rng.uniform(1, 50), 2),
                ask_size=round(rng.uniform(1, 50), 2),
                volume=round(state.volume.get(symbol, 0.0), 4),
                reference_price=self.reference[symbol],
            )
        )
        if venue.duplicate_probability and rng.random() < venue.duplicate_probability:
            ticks.append(ticks[-1])
        return ticks


def _price_tick(price: float) -> float:
    return 0.01 if price >= 1 else 0.000001


def _round_price(price: float) -> float:
    return round(price, 2 if price >= 1 else 6)
