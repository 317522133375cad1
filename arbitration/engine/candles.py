"""OHLCV candles of the arbitrated price series, closed on event time.

For each timeframe (1s, 1m, 5m, 15m, 1h, 1d) a candle covers ``[open_time, open_time + tf)``
with ``open_time`` a multiple of ``tf`` since the Unix epoch (aligned to UTC):

- open, high, low, close: the first, highest, lowest and last quote price whose event time
  falls in the bucket, "first" and "last" by ``(ts_event, seq)``;
- volume and trade_count: the sum of the amounts and the number of the deduplicated trades
  whose event time falls in the bucket (all providers: each venue's prints are its own);
- revision: 1 for the first record of a candle, one more for every later record;
- seq: offset of the raw tick that caused the record.

:meth:`CandleSeries.mark_price` and :meth:`CandleSeries.mark_trade` apply a quote price or a
trade to its candle in every timeframe; :meth:`CandleSeries.flush` returns one record per
candle changed since the last flush, so the changes of several ticks coalesce (see
``partition.py`` for when the engine flushes); a pending update of a candle that closes is
dropped, its final record carrying the same values. The final record, ``is_closed = true``,
comes once the symbol's event time reaches ``open_time + tf + lateness``. A bucket that saw
trades but no quote has no price and yields no candle. The engine rejects ticks older than
the lateness, so nothing ever lands in a closed candle.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import Candle
from schemas.times import TIMEFRAMES


def bucket_start(ts_us: int, timeframe_us: int) -> int:
    """Start of the UTC-aligned bucket holding ``ts_us``."""
    return ts_us - ts_us % timeframe_us


@dataclass(eq=False)
class OpenCandle:
    """One candle still taking updates (compared by identity)."""

    timeframe: str
    open_time: int
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    first: tuple[int, int] | None = None
    last: tuple[int, int] | None = None
    volume: float = 0.0
    trade_count: int = 0
    revision: int = 0
    changed_by: int = 0

    def add_price(self, ts_us: int, seq: int, price: float) -> bool:
        """Take one quote price; return whether the candle changed."""
        order = (ts_us, seq)
        changed = False
        if self.first is None or order < self.first:
            self.first = order
            changed |= self.open != price
            self.open = price
        if self.last is None or order >= self.last:
            self.last = order
            changed |= self.close != price
            self.close = price
        if self.high is None or price > self.high:
            self.high, changed = price, True
        if self.low is None or price < self.low:
            self.low, changed = price, True
        if changed:
            self.changed_by = seq
        return changed

    def add_trade(self, seq: int, amount: float) -> None:
        """Take one trade's amount."""
        self.volume += amount
        self.trade_count += 1
        self.changed_by = seq

    def record(self, symbol: str, seq: int, is_closed: bool) -> Candle:
        """The next record of this candle (its revision goes up by one)."""
        if self.open is None or self.high is None or self.low is None or self.close is None:
            raise ValueError("a candle no quote has priced has no record")
        self.revision += 1
        return Candle(
            symbol=symbol,
            timeframe=self.timeframe,
            open_time=self.open_time,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            is_closed=is_closed,
            revision=self.revision,
            seq=seq,
            trade_count=self.trade_count,
        )

    @property
    def priced(self) -> bool:
        """Whether a quote has set the prices yet."""
        return self.open is not None


class CandleSeries:
    """The open candles of one symbol in every timeframe, and those with a pending update."""

    def __init__(self, symbol: str, lateness_us: int) -> None:
        self.symbol = symbol
        self.lateness_us = lateness_us
        self.open: dict[str, dict[int, OpenCandle]] = {tf: {} for tf in TIMEFRAMES}
        self.pending: dict[OpenCandle, None] = {}
        self._next_close: int | None = None

    def close_until(self, watermark_us: int, seq: int) -> list[Candle]:
        """Final records of the candles whose end plus lateness the event time reached."""
        if self._next_close is None or watermark_us < self._next_close:
            return []
        closed = []
        for tf, size in TIMEFRAMES.items():
            candles = self.open[tf]
            for open_time in sorted(candles):
                if open_time + size + self.lateness_us > watermark_us:
                    break
                candle = candles.pop(open_time)
                self.pending.pop(candle, None)
                if candle.priced:
                    closed.append(candle.record(self.symbol, seq, is_closed=True))
        self._next_close = min(
            (
                t + TIMEFRAMES[tf] + self.lateness_us
                for tf, candles in self.open.items()
                for t in candles
            ),
            default=None,
        )
        return closed

    def mark_price(self, ts_us: int, seq: int, price: float) -> bool:
        """Apply one quote price to its candle in every timeframe; those it changed wait for
        :meth:`flush`. Whether any candle waits."""
        pending = self.pending
        for candle in self._buckets(ts_us):
            if candle.add_price(ts_us, seq, price):
                pending[candle] = None
        return bool(pending)

    def mark_trade(self, ts_us: int, seq: int, amount: float) -> bool:
        """Apply one trade to its candle in every timeframe; the priced ones wait for
        :meth:`flush`. Whether any candle waits."""
        pending = self.pending
        for candle in self._buckets(ts_us):
            candle.add_trade(seq, amount)
            if candle.priced:
                pending[candle] = None
        return bool(pending)

    def flush(self) -> list[Candle]:
        """One record of every candle changed since the last flush, in the order they first
        changed.

        Each record's ``seq`` is the offset of the last tick that changed its candle.
        """
        records = [
            candle.record(self.symbol, candle.changed_by, is_closed=False)
            for candle in self.pending
        ]
        self.pending.clear()
        return records

    def _buckets(self, ts_us: int) -> list[OpenCandle]:
        found = []
        for tf, size in TIMEFRAMES.items():
            start = bucket_start(ts_us, size)
            candle = self.open[tf].get(start)
            if candle is None:
                candle = self.open[tf][start] = OpenCandle(tf, start)
                end = start + size + self.lateness_us
                if self._next_close is None or end < self._next_close:
                    self._next_close = end
            found.append(candle)
        return found
