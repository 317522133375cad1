"""One client subscription: what it covers and which values it has already sent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from gateway.latest import LatestQuotes
from gateway.protocol import StreamType, utc_timestamp


@dataclass
class Subscription:
    """A stream type, a set of symbols and an interval; ``seq`` counts its data messages."""

    stream_type: StreamType
    symbols: list[str]
    interval_ms: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    seq: int = 0
    sent_versions: dict[str, int] = field(default_factory=dict)

    def changed_items(self, latest: LatestQuotes) -> list[str]:
        """JSON items of every symbol whose value changed since the last call (conflated)."""
        items = []
        for symbol in self.symbols:
            cached = latest.get(symbol)
            if cached is not None and cached.version != self.sent_versions.get(symbol):
                self.sent_versions[symbol] = cached.version
                items.append(cached.json(self.stream_type))
        return items

    def data_message(self, items: list[str]) -> str:
        """A data message around already encoded items; counts ``seq`` up by one."""
        self.seq += 1
        return (
            f'{{"type":"data","stream_type":"{self.stream_type.value}",'
            f'"subscription_id":"{self.id}","timestamp":"{utc_timestamp()}",'
            f'"seq":{self.seq},"data":[{",".join(items)}]}}'
        )

    def remove_symbols(self, symbols: list[str]) -> list[str]:
        """Drop some symbols; returns those it had."""
        removed = [symbol for symbol in symbols if symbol in self.symbols]
        self.symbols = [symbol for symbol in self.symbols if symbol not in removed]
        for symbol in removed:
            self.sent_versions.pop(symbol, None)
        return removed
