"""The rules every :class:`~runtime.settings.Settings` keeps; a broken one raises
:class:`SettingsError` naming its ``FIML_*`` variable."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.settings import Settings

ENV_PREFIX = "FIML_"

WEIGHTS = (
    "weight_freshness",
    "weight_latency",
    "weight_uptime",
    "weight_completeness",
    "weight_reliability",
    "weight_agreement",
)


class SettingsError(ValueError):
    """A ``FIML_*`` variable holds a value its setting cannot take."""


def check(settings: Settings) -> None:
    """Raise :class:`SettingsError` for the first rule ``settings`` breaks."""
    if settings.log_format not in ("auto", "json", "text"):
        raise SettingsError(f"{ENV_PREFIX}LOG_FORMAT must be auto, json or text")
    if settings.kafka_security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise SettingsError(
            f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, "
            "SASL_PLAINTEXT or SASL_SSL"
        )
    if settings.kafka_sasl_mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        raise SettingsError(
            f"{ENV_PREFIX}KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        )
    positive = (
        "partitions",
        "replication_factor",
        "synthetic_tick_hz",
        "freshness_ms",
        "heartbeat_interval",
        "send_queue_limit",
        "slow_consumer_seconds",
        "stale_after_seconds",
        "max_message_bytes",
        "client_messages_per_second",
        "demand_refresh_seconds",
        "provider_call_timeout_seconds",
        "provider_stall_seconds",
        "provider_poll_seconds",
        "ingest_buffer_records",
        "consumer_stall_seconds",
        "delivery_timeout_seconds",
        "schema_registry_timeout_seconds",
        "synthetic_news_seconds",
        "book_depth",
        "book_snapshot_ms",
        "demand_checks_per_minute",
        "demand_accepted_seconds",
        "demand_refused_seconds",
    )
    for name in positive:
        if not getattr(settings, name) > 0:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be above zero")
    for name in ("agreement_bps", "latency_scale_ms", "expected_providers"):
        if not getattr(settings, name) > 0:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be above zero")
    if not settings.outlier_mads >= 1:
        raise SettingsError(
            f"{ENV_PREFIX}OUTLIER_MADS must be at least 1, so that the "
            "providers at the consensus are never refused"
        )
    for name in (
        "candle_lateness_ms",
        "future_tolerance_ms",
        "status_delay_ms",
        "demand_linger_seconds",
        "max_replays_per_connection",
        "max_connections",
        "max_connections_per_client",
        "max_subscriptions_per_connection",
        "max_symbols_per_connection",
        "max_replays",
        "max_history_requests",
        "max_history_range_hours",
        "max_history_scan_records",
        "max_demanded_symbols",
        "max_new_symbols_per_minute",
        "symbol_evict_seconds",
        "arbitration_evict_seconds",
        "replay_lateness_ms",
        "outlier_floor_bps",
        "switch_margin",
        "metrics_score_symbols",
        "alert_rule_lead_ms",
        *WEIGHTS,
    ):
        if not getattr(settings, name) >= 0:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must not be negative")
    if not 0 <= settings.alphavantage_news_per_day < 25:
        raise SettingsError(
            f"{ENV_PREFIX}ALPHAVANTAGE_NEWS_PER_DAY must be 0 to 24 of the key's 25 requests"
        )
    for name in ("providers", "symbols"):
        if not getattr(settings, name):
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must name at least one")
    for name in ("kafka_port", "kafka_controller_port", "gateway_port", "registry_port"):
        if not 0 < getattr(settings, name) < 65536:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be a TCP port")
    for name in (
        "health_port",
        "up_ingest_health_port",
        "up_arbitration_health_port",
        "up_webhooks_health_port",
        "up_alerts_health_port",
    ):
        if not 0 <= getattr(settings, name) < 65536:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be a TCP port, or 0 for off")
