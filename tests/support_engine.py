"""The engine tests' harness: one partition engine fed with records at consecutive offsets."""

from __future__ import annotations

from arbitration.engine.config import EngineConfig
from arbitration.engine.partition import PartitionEngine, SourceRecord
from arbitration.engine.statuses import StatusTimeline
from schemas import encode
from schemas.records import ProviderStatus, RawTick
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
