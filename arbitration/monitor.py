"""What the arbitration worker exports as metrics besides its counters, read off the engines
every ``METRICS_PERIOD`` seconds (never on the per-record path): the consumer lag of each
raw partition it holds, the provider scores of each symbol's last quote and the provider
statuses as the engines apply them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from arbitration.engine.partition import PartitionEngine
from runtime.metrics import SYMBOLS_HELD, ConsumerLag, ScoreExport, set_provider_state

METRICS_PERIOD = 1.0


class Consumer(Protocol):
    """What the monitor needs of the worker's Kafka consumer (Faust's has it)."""

    def assignment(self) -> set[Any]: ...

    def highwater(self, tp: Any) -> int | None: ...


class ArbitrationMonitor:
    """Exports the state of one worker's partition engines."""

    def __init__(self, raw_topic: str, max_score_symbols: int) -> None:
        self.raw_topic = raw_topic
        self.lag = ConsumerLag()
        self.scores = ScoreExport(max_score_symbols)

    def export(self, engines: Mapping[int, PartitionEngine], consumer: Consumer) -> None:
        """Export lag, scores and statuses of the engines of the partitions ``consumer``
        holds. The lag is the end offset the consumer last fetched minus the engine's next
        offset; a partition without an engine yet counts whole (a new engine replays it)."""
        highwaters = {
            tp.partition: consumer.highwater(tp)
            for tp in consumer.assignment()
            if tp.topic == self.raw_topic
        }
        held = [engines[p] for p in sorted(highwaters) if p in engines]
        self.lag.export(
            {
                (self.raw_topic, p): end - _next_offset(engines.get(p))
                for p, end in highwaters.items()
                if end is not None
            }
        )
        self.scores.export(
            book.last_quote
            for engine in held
            for book in engine.books.values()
            if book.last_quote is not None
        )
        for provider, state in applied_states(held).items():
            set_provider_state(provider, state)
        SYMBOLS_HELD.labels("arbitration").set(sum(len(engine.books) for engine in held))


def applied_states(engines: Iterable[PartitionEngine]) -> dict[str, str]:
    """Each provider's status as applied by the engine that is furthest in event time."""
    states: dict[str, tuple[int, str]] = {}
    for engine in engines:
        watermark = engine.watermark if engine.watermark is not None else -1
        for provider, health in engine.health.items():
            if provider not in states or watermark > states[provider][0]:
                states[provider] = (watermark, health.state)
    return {provider: state for provider, (_, state) in sorted(states.items())}


def _next_offset(engine: PartitionEngine | None) -> int:
    return 0 if engine is None or engine.next_offset is None else engine.next_offset
