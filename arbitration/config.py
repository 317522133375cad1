"""The engine's parameters, in the engine's units (microseconds), taken from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import Settings


@dataclass(frozen=True)
class Weights:
    """Relative weights of the six score components; they need not sum to one."""

    freshness: float = 1.0
    latency: float = 1.0
    uptime: float = 1.0
    completeness: float = 0.5
    reliability: float = 1.0
    agreement: float = 2.0


@dataclass(frozen=True)
class EngineConfig:
    """Everything the pure engine needs to know; see arbitration/README.md."""

    freshness_us: int = 2_000_000
    lateness_us: int = 3_000_000
    future_tolerance_us: int = 1_000_000
    status_delay_us: int = 2_000_000
    outlier_mads: float = 10.0
    outlier_floor_bps: float = 5.0
    agreement_bps: float = 50.0
    latency_scale_us: float = 100_000.0
    expected_providers: int = 3
    switch_margin: float = 0.05
    candle_flush_us: int = 100_000
    weights: Weights = Weights()

    @property
    def effective_lateness_us(self) -> int:
        """Allowed lateness, never shorter than the freshness window (see README)."""
        return max(self.lateness_us, self.freshness_us)

    @property
    def effective_status_delay_us(self) -> int:
        """Status delay, never shorter than the future tolerance (see statuses.py)."""
        return max(self.status_delay_us, self.future_tolerance_us)

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """The engine configuration of these settings."""
        return cls(
            freshness_us=settings.freshness_ms * 1000,
            lateness_us=settings.candle_lateness_ms * 1000,
            future_tolerance_us=settings.future_tolerance_ms * 1000,
            status_delay_us=settings.status_delay_ms * 1000,
            outlier_mads=settings.outlier_mads,
            outlier_floor_bps=settings.outlier_floor_bps,
            agreement_bps=settings.agreement_bps,
            latency_scale_us=settings.latency_scale_ms * 1000,
            expected_providers=settings.expected_providers,
            switch_margin=settings.switch_margin,
            weights=Weights(
                freshness=settings.weight_freshness,
                latency=settings.weight_latency,
                uptime=settings.weight_uptime,
                completeness=settings.weight_completeness,
                reliability=settings.weight_reliability,
                agreement=settings.weight_agreement,
            ),
        )
