"""The engine's configuration from the settings, which hold every default."""

from __future__ import annotations

from arbitration.engine.config import EngineConfig, Weights
from runtime.settings import Settings


def engine_config(settings: Settings) -> EngineConfig:
    """The engine configuration of these settings, in the engine's units."""
    return EngineConfig(
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
        evict_us=int(settings.arbitration_evict_seconds * 1_000_000),
        weights=Weights(
            freshness=settings.weight_freshness,
            latency=settings.weight_latency,
            uptime=settings.weight_uptime,
            completeness=settings.weight_completeness,
            reliability=settings.weight_reliability,
            agreement=settings.weight_agreement,
        ),
    )
