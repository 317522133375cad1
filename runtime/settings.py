"""Settings of every FIML service, read from ``FIML_*`` environment variables.

Each field ``name`` is set by the variable ``FIML_NAME``; a value that does not parse
raises :class:`SettingsError` naming the variable. A renamed variable (``RENAMED``) is still
read, with a ``FutureWarning``, while the new one is unset.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import types
import typing
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.settings_checks import ENV_PREFIX, SettingsError, check
from schemas.topics import TopicRole

DEFAULT_EQUITIES = ("AAPL", "GOOGL", "MSFT", "TSLA", "NVDA", "AMZN", "META", "SPY")
DEFAULT_CRYPTO = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT")

# Old variable names still read, each with the field it sets.
RENAMED = {"FIML_SYNTHETIC_SYMBOLS": "symbols"}


def _default_cache_dir() -> str:
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(xdg) / "fiml")


@dataclass(frozen=True)
class TopicSpec:
    """A topic the project creates itself: name, partitions and retention."""

    name: str
    partitions: int
    retention_ms: int | None
    compacted: bool = False


@dataclass(frozen=True)
class Settings:
    """Every setting with its default; see :meth:`from_env`."""

    kafka_bootstrap: str | None = None
    kafka_version: str = "4.1.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_data_dir: str | None = None
    cache_dir: str = field(default_factory=_default_cache_dir)

    topic_prefix: str = "fiml"
    partitions: int = 6
    replication_factor: int = 1
    raw_retention_hours: int = 7 * 24
    status_retention_hours: int = 7 * 24
    quotes_retention_hours: int = 7 * 24
    trades_retention_hours: int = 7 * 24
    candles_retention_hours: int = 30 * 24
    dlq_retention_hours: int = 30 * 24
    news_retention_hours: int = 7 * 24
    books_retention_hours: int = 2
    alerts_retention_hours: int = 30 * 24

    providers: tuple[str, ...] = ("synthetic",)
    alphavantage_api_key: str | None = field(default=None, repr=False)
    fmp_api_key: str | None = field(default=None, repr=False)
    ccxt_exchanges: tuple[str, ...] = ("binance", "kraken", "coinbase", "okx")
    provider_call_timeout_seconds: float = 10.0
    provider_stall_seconds: float = 30.0
    provider_poll_seconds: float = 2.0
    demand_linger_seconds: float = 300.0
    ingest_buffer_records: int = 100_000
    symbols: tuple[str, ...] = DEFAULT_EQUITIES + DEFAULT_CRYPTO
    synthetic_seed: int = 7
    synthetic_tick_hz: float = 10.0
    synthetic_resume: bool = True
    synthetic_trend_bps: float = 0.0
    news: bool = True
    alphavantage_news_per_day: int = 10
    synthetic_news_seconds: float = 20.0

    freshness_ms: int = 2000
    synthetic_faults: tuple[str, ...] = ()
    candle_lateness_ms: int = 3000
    future_tolerance_ms: int = 1000
    status_delay_ms: int = 2000
    outlier_mads: float = 10.0
    outlier_floor_bps: float = 5.0
    agreement_bps: float = 50.0
    latency_scale_ms: float = 100.0
    expected_providers: int = 3
    switch_margin: float = 0.05
    weight_freshness: float = 1.0
    weight_latency: float = 1.0
    weight_uptime: float = 1.0
    weight_completeness: float = 0.5
    weight_reliability: float = 1.0
    weight_agreement: float = 2.0

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_warm_records: int = 1000
    heartbeat_interval: float = 30.0
    send_queue_limit: int = 1000
    slow_consumer_seconds: float = 15.0
    stale_after_seconds: float = 10.0
    max_message_bytes: int = 64 * 1024
    client_messages_per_second: float = 50.0
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    allowed_origins: tuple[str, ...] = ()
    # Limits on by default, far above what a dashboard needs (README "Limits"); 0: off.
    max_connections: int = 5000
    max_connections_per_client: int = 100
    max_subscriptions_per_connection: int = 100
    max_symbols_per_connection: int = 500
    max_replays: int = 16
    max_history_requests: int = 8
    # Bounded history (README "Limits"): the range one history request or replay may ask
    # for, and the records of its partitions it may read (a REST page stops there and
    # gives a cursor; a longer replay is refused).
    max_history_range_hours: int = 31 * 24
    max_history_scan_records: int = 500_000
    # Clients cannot steer ingest: the synthetic provider serves FIML_SYMBOLS unless this
    # opts in to any symbol; ingest serves at most so many demanded symbols beyond them.
    synthetic_any_symbol: bool = False
    max_demanded_symbols: int = 100
    # Live providers check a demanded symbol before polling it (ingest/providers/admission.py):
    # lookups a minute per provider, and how long an acceptance and a refusal are kept.
    demand_checks_per_minute: int = 10
    demand_accepted_seconds: float = 86_400.0
    demand_refused_seconds: float = 3_600.0
    # Demand expiry and eviction (docs/invariants.md "Per-symbol state"): symbols a connection
    # may add per minute; state of a symbol without demand and data dropped after so long
    # (gateway, ingest: wall clock, 0: never; arbitration: the partition's event time).
    max_new_symbols_per_minute: int = 1000
    symbol_evict_seconds: float = 600.0
    arbitration_evict_seconds: float = 172_800.0
    # Kafka security (runtime/kafka_security.py): protocol, SASL user, TLS files.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    gateway_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    demand_refresh_seconds: float = 60.0
    max_replays_per_connection: int = 2
    replay_lateness_ms: int = 2 * 86_400_000
    dashboard_chart_library: str | None = None

    health_host: str = "127.0.0.1"
    health_port: int = 0
    up_ingest_health_port: int = 8001
    up_arbitration_health_port: int = 8002
    up_webhooks_health_port: int = 8003
    up_alerts_health_port: int = 8004
    consumer_stall_seconds: float = 60.0
    delivery_timeout_seconds: float = 30.0
    metrics_score_symbols: int = 100

    schema_registry_url: str | None = field(default=None, repr=False)
    schema_registry_username: str | None = field(default=None, repr=False)
    schema_registry_password: str | None = field(default=None, repr=False)
    schema_registry_timeout_seconds: float = 5.0
    registry_port: int = 8081
    registry_heap: str = "256m"
    registry_data_dir: str | None = None
    book_depth: int = 50
    book_snapshot_ms: int = 250
    alert_rule_lead_ms: int = 1000
    alert_webhook_secret: str | None = field(default=None, repr=False)

    log_level: str = "info"
    log_format: str = "auto"

    def __post_init__(self) -> None:
        check(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``env`` (default: the process environment), then ``overrides``."""
        env = os.environ if env is None else env
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            variable = ENV_PREFIX + f.name.upper()
            raw = env.get(variable)
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(variable, raw.strip(), hints[f.name])
        for variable, name in RENAMED.items():
            raw = env.get(variable)
            if raw is not None and raw.strip() != "":
                current = ENV_PREFIX + name.upper()
                warnings.warn(f"{variable} is deprecated; use {current}", FutureWarning, 2)
                values.setdefault(name, _parse(variable, raw.strip(), hints[name]))
        values.update(overrides)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as ``FIML_*`` variables, for child processes."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                if isinstance(value, tuple):
                    text = ",".join(value)
                else:
                    text = str(value).lower() if isinstance(value, bool) else str(value)
                env[ENV_PREFIX + f.name.upper()] = text
        return env

    @property
    def kafka_data_path(self) -> Path:
        """Where the local broker keeps its log."""
        return Path(self.kafka_data_dir or Path(self.cache_dir) / "broker")

    @property
    def registry_data_path(self) -> Path:
        """Where the local schema registry keeps its database and log."""
        return Path(self.registry_data_dir or Path(self.cache_dir) / "registry")

    def topic(self, role: TopicRole) -> str:
        """The full name of a topic, for example ``topic(TopicRole.QUOTES)`` is ``fiml.quotes``."""
        return f"{self.topic_prefix}.{role}"

    def topics(self) -> dict[TopicRole, TopicSpec]:
        """Every topic by role (docs/topics.md), as this configuration names it."""
        hour_ms = 3_600_000
        timed = {
            TopicRole.RAW: self.raw_retention_hours,
            TopicRole.STATUS: self.status_retention_hours,
            TopicRole.QUOTES: self.quotes_retention_hours,
            TopicRole.CANDLES: self.candles_retention_hours,
            TopicRole.TRADES: self.trades_retention_hours,
            TopicRole.DLQ: self.dlq_retention_hours,
            TopicRole.NEWS_RAW: self.news_retention_hours,
            TopicRole.NEWS: self.news_retention_hours,
            TopicRole.BOOKS: self.books_retention_hours,
            TopicRole.ALERTS_FIRED: self.alerts_retention_hours,
            TopicRole.WEBHOOK_DLQ: self.alerts_retention_hours,
        }
        specs = {
            role: TopicSpec(self.topic(role), self.partitions, hours * hour_ms)
            for role, hours in timed.items()
        }
        for role in (
            TopicRole.DEMAND,
            TopicRole.STATE,
            TopicRole.CONSOLIDATED_BOOKS,
            TopicRole.ALERT_RULES,
            TopicRole.ALERTS_STATE,
        ):
            specs[role] = TopicSpec(self.topic(role), self.partitions, None, compacted=True)
        return specs


def _parse(variable: str, raw: str, hint: object) -> object:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = next(a for a in args if a is not type(None))
        return _parse(variable, raw, inner)
    if typing.get_origin(hint) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if hint is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{variable} must be true or false, got {raw!r}")
    try:
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError:
        raise SettingsError(f"{variable} must be a number, got {raw!r}") from None
    return raw
