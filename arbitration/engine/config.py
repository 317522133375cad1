"""The engine's parameters, in the engine's units (microseconds). Their defaults are the
settings' (``runtime/settings.py``); ``arbitration/configure.py`` converts them."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.times import TIMEFRAMES

LONGEST_CANDLE_US = max(TIMEFRAMES.values())


@dataclass(frozen=True)
class Components:
    """One number per score component (``scoring.py``): the six scores of a provider, each in
    [0, 1], or their relative weights, which need not sum to one."""

    freshness: float
    latency: float
    uptime: float
    completeness: float
    reliability: float
    agreement: float


Weights = Components


@dataclass(frozen=True)
class EngineConfig:
    """Everything the pure engine needs to know; see arbitration/README.md."""

    freshness_us: int
    lateness_us: int
    future_tolerance_us: int
    status_delay_us: int
    outlier_mads: float
    outlier_floor_bps: float
    agreement_bps: float
    latency_scale_us: float
    expected_providers: int
    switch_margin: float
    weights: Weights
    candle_flush_us: int = 100_000
    evict_us: int = 0

    @property
    def effective_lateness_us(self) -> int:
        """Allowed lateness, never shorter than the freshness window (see README)."""
        return max(self.lateness_us, self.freshness_us)

    @property
    def effective_evict_us(self) -> int:
        """How far the partition's event time passes a symbol's last tick before the symbol
        is forgotten: ``evict_us``, never shorter than twice the longest candle and the
        lateness, so every candle of a forgotten symbol is closed (see README)."""
        return max(self.evict_us, 2 * (LONGEST_CANDLE_US + self.effective_lateness_us))

    @property
    def forgotten_us(self) -> int:
        """How far behind the partition's event time a tick of a symbol the engine holds
        nothing of may be: a tick older could fall in a candle closed when it was forgotten."""
        return self.effective_evict_us - LONGEST_CANDLE_US - self.effective_lateness_us

    @property
    def effective_status_delay_us(self) -> int:
        """Status delay, never shorter than the future tolerance (see statuses.py)."""
        return max(self.status_delay_us, self.future_tolerance_us)
