"""Builders shared by the arbitration tests: ticks, raw records and a small engine harness."""

from __future__ import annotations

from arbitration.engine.config import EngineConfig
from arbitration.engine.partition import PartitionEngine, SourceRecord
from arbitration.engine.statuses import StatusTimeline
from schemas import encode
from schemas.records import ProviderStatus, RawTick
from tests.factories import default_config

MS = 1_000
SECOND = 1_000_000
T0 = 1_763_807_400_000_000  # 2025-11-22T10:30:00Z, a whole day plus 37 800 s


def tick(
    provider: str,
    at: int,
    price: float,
    *,
    latency: int = 10 * MS,
    symbol: str = "AAPL",
    kind: str = "QUOTE",
    seq: int | None = None,
    bid: float | None = None,
    ask: float | None = None,
    ref: float | None = None,
    size: float | None = None,
    trade_id: str | None = None,
) -> RawTick:
    """A tick with event time ``T0 + at``, received ``latency`` later."""
    if kind == "TRADE" and size is None:
        size = 1.0
    return RawTick(
        symbol,
        provider,
        kind,
        T0 + at,
        T0 + at + latency,
        seq if seq is not None else at,
        price,
        bid=bid,
        ask=ask,
        reference_price=ref,
        trade_id=trade_id,
        trade_size=size,
    )


def status(provider: str, at: int, state: str) -> ProviderStatus:
    """A status with event time ``T0 + at``."""
    return ProviderStatus(provider, T0 + at, state)


class Harness:
    """One partition engine fed with encoded records at consecutive offsets."""

    def __init__(
        self, config: EngineConfig | None = None, statuses: list[ProviderStatus] = ()
    ) -> None:
        self.timeline = StatusTimeline()
        for s in statuses:
            self.timeline.add(s)
        self.engine = PartitionEngine(config or default_config(), "raw", 0, self.timeline)
        self.offset = 0

    def send(self, item: RawTick | bytes | None) -> list:
        """Outputs of one tick (or raw bytes, or no value) at the next offset."""
        raw = item is None or isinstance(item, bytes)
        value = item if raw else encode(item)
        ts = T0 if raw else item.ts_ingest
        outputs = self.engine.process(SourceRecord(self.offset, b"AAPL", value, ts))
        self.offset += 1
        return outputs

    def feed(self, ticks: list) -> list:
        """All outputs of several ticks, in order."""
        return [out for t in ticks for out in self.send(t)]
