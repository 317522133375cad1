"""Which news request a provider makes when: pure, a function of the symbols and the clock.

Time is cut into slots of ``Budget.interval_s`` counted from the epoch, one request a slot,
so a provider never asks more often than its budget allows (Alpha Vantage's free 25 a day:
one every 57.6 minutes). The requests of a provider form a rotation: its targets (one
ticker of one feed, e.g. FMP's stock news for AAPL) sorted by feed, then ticker, grouped
per feed into batches of at most ``max_batch`` tickers. Slot ``k`` makes request
``k mod len(rotation)``: round-robin, and the same for the same symbols and clock value, so
a restarted poller picks up where the clock is, not where it stopped. Counted from the
epoch, a UTC day holds exactly 25 slots of 3456 s; a poller restarted inside a slot may
make that slot's request a second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Budget:
    """How a provider may spend its requests on news."""

    interval_s: float
    max_batch: int = 1
    demand_only: bool = False

    @property
    def interval_us(self) -> int:
        """The slot length in microseconds."""
        return max(1, round(self.interval_s * MICROS))


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """One ticker of one feed of a provider and the canonical symbols it serves."""

    feed: str
    ticker: str
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewsRequest:
    """One request: a feed and the targets whose tickers it asks for."""

    feed: str
    targets: tuple[Target, ...]

    @property
    def tickers(self) -> tuple[str, ...]:
        """The provider's tickers of the request."""
        return tuple(target.ticker for target in self.targets)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The canonical symbols the request is for."""
        return tuple(symbol for target in self.targets for symbol in target.symbols)


@dataclass(frozen=True, slots=True)
class Plan:
    """The slot ``now_us`` falls in, its request (None with nothing to ask) and when the
    next slot starts."""

    slot: int
    request: NewsRequest | None
    next_us: int


def polled_symbols(
    budget: Budget, configured: Iterable[str], wanted: Iterable[str]
) -> frozenset[str]:
    """The symbols a provider polls: those clients want, plus the configured ones unless its
    budget is spent on demand alone."""
    chosen = set(wanted)
    if not budget.demand_only:
        chosen.update(configured)
    return frozenset(chosen)


def rotation(targets: Iterable[Target], max_batch: int) -> tuple[NewsRequest, ...]:
    """The requests of one round: targets by feed, then ticker, in batches per feed."""
    size = max(1, max_batch)
    requests: list[NewsRequest] = []
    for feed, group in groupby(sorted(set(targets)), key=lambda target: target.feed):
        ordered = list(group)
        requests.extend(
            NewsRequest(feed, tuple(ordered[start : start + size]))
            for start in range(0, len(ordered), size)
        )
    return tuple(requests)


def plan(budget: Budget, targets: Iterable[Target], now_us: int) -> Plan:
    """The request of the slot ``now_us`` falls in."""
    interval = budget.interval_us
    slot = now_us // interval
    requests = rotation(targets, budget.max_batch)
    request = requests[slot % len(requests)] if requests else None
    return Plan(slot, request, (slot + 1) * interval)


def symbol_map(targets: Iterable[Target]) -> Mapping[str, Sequence[str]]:
    """``{ticker: canonical symbols}`` over ``targets``: how a parser maps a provider's ticker
    back to the served symbols."""
    mapped: dict[str, set[str]] = {}
    for target in targets:
        mapped.setdefault(target.ticker, set()).update(target.symbols)
    return {ticker: tuple(sorted(symbols)) for ticker, symbols in mapped.items()}
