"""One client subscription: what it covers, what it has sent, and its data messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from domain.books.protocol import CONSOLIDATED, BookPublisher
from gateway.protocol import StreamType
from runtime.clock import now_iso

DEFAULT_BOOK_DEPTH = 10


@dataclass
class Subscription:
    """A stream type, symbols, an interval and (for ohlcv) a timeframe.

    ``cursors`` tell the stores what this subscription has seen per symbol; ``seq`` counts
    its data messages; ``in_flight`` is true while one of its data messages waits to be
    written, during which new values conflate instead of queueing up; ``ts_ingest`` is
    that message's newest quote's ingest time, for the latency metric. ``replay`` marks a
    subscription that reads the log from a ``start`` on its own consumer.
    """

    stream_type: StreamType
    symbols: list[str]
    interval_ms: int
    timeframe: str = "1m"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = 0
    cursors: dict[str, int] = field(default_factory=dict)
    in_flight: bool = False
    ts_ingest: int | None = None
    replay: bool = False
    depth: int = DEFAULT_BOOK_DEPTH
    venue: str = CONSOLIDATED
    publishers: dict[str, BookPublisher] = field(default_factory=dict)

    def data_message(self, items: list[str], replay: bool = False) -> str:
        """A data message around already encoded items; counts ``seq`` up by one.

        Replayed data carries ``"replay":true``.
        """
        self.seq += 1
        marker = ',"replay":true' if replay else ""
        return (
            f'{{"type":"data","stream_type":"{self.stream_type.value}",'
            f'"subscription_id":"{self.id}","timestamp":"{now_iso()}",'
            f'"seq":{self.seq}{marker},"data":[{",".join(items)}]}}'
        )

    def remove_symbols(self, symbols: list[str]) -> list[str]:
        """Drop some symbols; returns those it had."""
        removed = [symbol for symbol in symbols if symbol in self.symbols]
        self.symbols = [symbol for symbol in self.symbols if symbol not in removed]
        for symbol in removed:
            self.cursors.pop(symbol, None)
            self.publishers.pop(symbol, None)
        return removed
