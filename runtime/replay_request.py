"""What a replay reads: the replayable streams, one request, and why one cannot be served.

The gateway's replay subscriptions, ``fiml replay`` and the REST history all describe what
they read as a :class:`ReplayRequest` and read it with :class:`runtime.replay.Replay`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import Candle, Quote, RawTick, Trade
from schemas.news import NewsItem
from schemas.topics import TopicRole


@dataclass(frozen=True)
class StreamSource:
    """Where one replayable stream lives, which field holds its event time (what the range
    applies to), and whether its records are ordered by that or by when they were written."""

    role: TopicRole
    record_type: type
    time_field: str
    by_write_time: bool = False
    keyed: bool = False
    """Its records name no symbol: the key is theirs, and each is read as :class:`Keyed`."""


@dataclass(frozen=True, slots=True)
class Keyed:
    """A record of a keyed stream with the symbol of its key; its own fields read through."""

    symbol: str
    record: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)


STREAMS: dict[str, StreamSource] = {
    "quotes": StreamSource(TopicRole.QUOTES, Quote, "ts_event"),
    "candles": StreamSource(TopicRole.CANDLES, Candle, "open_time", by_write_time=True),
    "trades": StreamSource(TopicRole.TRADES, Trade, "ts_event"),
    "raw": StreamSource(TopicRole.RAW, RawTick, "ts_event"),
    "news": StreamSource(TopicRole.NEWS, NewsItem, "published_us", by_write_time=True, keyed=True),
}


class ReplayError(ValueError):
    """A replay that cannot be served; the message says why."""


@dataclass(frozen=True)
class ReplayRequest:
    """The records of ``stream`` for ``symbols`` from ``start`` to ``end`` (µs since the epoch,
    inclusive; without ``end``, then the new ones as they are written), of one candle
    ``timeframe`` if given, paced at ``speed`` times the original pace (None: as fast as they
    are read, see ``runtime/pacing.py``)."""

    stream: str
    symbols: tuple[str, ...]
    start: int
    end: int | None = None
    timeframe: str | None = None
    speed: float | None = None

    def check(
        self, now_us: int, future_tolerance_us: int, streams: dict[str, StreamSource] = STREAMS
    ) -> StreamSource:
        """The stream's source among ``streams``; :class:`ReplayError` if the stream is
        unknown, ``end`` precedes ``start`` or is still to come at ``now_us`` (its records are
        not written yet)."""
        source = streams.get(self.stream)
        if source is None:
            known = ", ".join(streams)
            raise ReplayError(f"unknown stream {self.stream!r}; expected one of {known}")
        if self.end is not None and self.end < self.start:
            raise ReplayError("end is before start")
        if self.end is not None and self.end > now_us + future_tolerance_us:
            raise ReplayError("end is in the future: its records are not written yet")
        return source
