"""The engine tests' harness: one partition engine fed with records at consecutive offsets."""

from __future__ import annotations

from arbitration.engine.config import EngineConfig
from arbitration.engine.partition import PartitionEngine, SourceRecord
from arbitration.engine.statuses import StatusTimeline
from schemas import encode
from schemas.records import Candle, ProviderStatus, Quote, RawTick, Rejected, Trade
from tests.factories import T0, default_config


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


def repeated_output_keys(
    quotes: list[Quote], candles: list[Candle], trades: list[Trade], dlq: list[Rejected]
) -> dict[str, int]:
    """How many records of each output topic repeat a key written before (all 0 when none)."""
    keys = {
        "quotes": [(q.symbol, q.seq) for q in quotes],
        "candles": [(c.symbol, c.timeframe, c.open_time, c.revision) for c in candles],
        "trades": [(t.provider, t.trade_id) for t in trades],
        "dlq": [(r.source_partition, r.source_offset) for r in dlq],
    }
    return {role: len(found) - len(set(found)) for role, found in keys.items()}
