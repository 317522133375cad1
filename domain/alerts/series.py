"""Series of a symbol that rules share: its price extremes over a window, its candle volumes."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from domain.alerts.rules import MAX_LOOKBACK

_COMPACT_AT = 64


@dataclass(slots=True)
class _Monotonic:
    """Candidates for the extreme of every suffix of the window, oldest first.

    Each kept price beats (``lower`` for a minimum) every later one; so the extreme of the
    prices since ``t`` is the first kept one at or after ``t``. Entries before ``head`` are
    gone; the lists are cut when that dead prefix grows.
    """

    lower: bool
    times: list[int] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    head: int = 0

    def push(self, time: int, price: float) -> None:
        """Add the newest price; drop the kept ones it makes useless."""
        times, prices = self.times, self.prices
        while len(prices) > self.head and (
            prices[-1] >= price if self.lower else prices[-1] <= price
        ):
            prices.pop()
            times.pop()
        times.append(time)
        prices.append(price)

    def evict(self, before: int) -> None:
        """Forget the prices older than ``before``."""
        times = self.times
        while self.head < len(times) and times[self.head] < before:
            self.head += 1
        if self.head >= _COMPACT_AT and self.head * 2 >= len(times):
            del times[: self.head], self.prices[: self.head]
            self.head = 0

    def since(self, time: int) -> float:
        """The extreme of the prices at or after ``time`` (one must exist)."""
        if self.times[self.head] >= time:
            return self.prices[self.head]
        return self.prices[bisect_left(self.times, time, self.head)]


@dataclass(slots=True)
class ExtremaWindow:
    """Minimum and maximum of the prices of the last ``span`` microseconds, both ends in."""

    span: int
    low: _Monotonic = field(default_factory=lambda: _Monotonic(lower=True))
    high: _Monotonic = field(default_factory=lambda: _Monotonic(lower=False))

    def push(self, time: int, price: float) -> None:
        """Add a price at ``time`` (not older than the last) and forget the ones out of span."""
        self.low.push(time, price)
        self.high.push(time, price)
        self.low.evict(time - self.span)
        self.high.evict(time - self.span)

    def extremes_since(self, time: int) -> tuple[float, float]:
        """Lowest and highest price at or after ``time``, which must be within the span."""
        return self.low.since(time), self.high.since(time)

    def to_data(self) -> list[Any]:
        """Plain data: the span and the live entries of both sides."""
        return [self.span, *(_side_data(side) for side in (self.low, self.high))]

    @classmethod
    def from_data(cls, data: list[Any]) -> ExtremaWindow:
        """The window :meth:`to_data` describes."""
        span, low, high = data
        return cls(
            span,
            _Monotonic(True, list(low[0]), list(low[1])),
            _Monotonic(False, list(high[0]), list(high[1])),
        )


def _side_data(side: _Monotonic) -> list[list[Any]]:
    return [side.times[side.head :], side.prices[side.head :]]


@dataclass(slots=True)
class VolumeHistory:
    """Volumes of the last closed candles of one symbol and timeframe, by candle end."""

    ends: list[int] = field(default_factory=list)
    volumes: list[float] = field(default_factory=list)

    def accepts(self, end: int) -> bool:
        """Whether a candle ending at ``end`` is newer than every one in the history."""
        return not self.ends or end > self.ends[-1]

    def add(self, end: int, volume: float) -> None:
        """Append a closed candle, keeping the last ``MAX_LOOKBACK``."""
        self.ends.append(end)
        self.volumes.append(volume)
        if len(self.ends) > MAX_LOOKBACK:
            del self.ends[0], self.volumes[0]

    def average(self, count: int, since: int) -> float | None:
        """Mean volume of the last ``count`` candles, if that many ended at or after ``since``."""
        if len(self.ends) < count or self.ends[-count] < since:
            return None
        return sum(self.volumes[-count:]) / count

    def to_data(self) -> list[Any]:
        """Plain data: ends and volumes."""
        return [list(self.ends), list(self.volumes)]
