"""Prometheus metrics of every service, in the default registry (each service is its own
process and exports only what it updates). ``exposition()`` is the body of ``GET /metrics``.

Label cardinality is bounded: providers and topic partitions are few and fixed by the
configuration; symbols appear only in ``fiml_provider_score``, for at most
``FIML_METRICS_SCORE_SYMBOLS`` symbols per process (the first ones seen).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from schemas.records import ProviderStatus, Quote, RawTick

CONTENT_TYPE = CONTENT_TYPE_LATEST

STATES = ("UP", "DEGRADED", "DOWN")

TICKS_IN = Counter(
    "fiml_ticks_in_total", "Raw ticks ingest wrote to Kafka, per provider.", ["provider"]
)
NEWS_IN = Counter(
    "fiml_news_in_total",
    "Raw news records ingest wrote to Kafka (one per symbol of an item), per provider.",
    ["provider"],
)
NEWS_SKIPPED = Counter(
    "fiml_news_skipped_total",
    "News items a provider answered that ingest could not use, per provider and reason.",
    ["provider", "reason"],
)
NEWS_WRITTEN = Counter(
    "fiml_news_written_total",
    "Story items (new or updated) the news agent wrote to the news topic.",
)
INGEST_BUFFERED = Gauge(
    "fiml_ingest_buffered_records",
    "Records ingest holds for Kafka: reported by providers, not yet acknowledged.",
)
INGEST_DROPPED = Counter(
    "fiml_ingest_dropped_total",
    "Records ingest will never write, per provider and reason: "
    "buffer_full (the buffer was full), refused (too large or not "
    "encodable), stopped (still buffered at a stop with no broker).",
    ["provider", "reason"],
)
DEMAND_REFUSED = Counter(
    "fiml_demand_refused_total",
    "Demanded symbols a live provider's check refused (never polled), per provider and "
    "reason: not_listed, not_spot, inactive (ccxt's markets) or not_found (a lookup).",
    ["provider", "reason"],
)
BROKER_UP = Gauge(
    "fiml_ingest_broker_up",
    "1 while ingest's producer delivers to Kafka, 0 while the broker is away.",
)
PROVIDER_STATUS = Gauge(
    "fiml_provider_status",
    "1 for the provider's last status (UP, DEGRADED or DOWN), 0 for the "
    "others. Ingest: as reported; arbitration: as applied to quotes.",
    ["provider", "state"],
)
PROVIDER_SCORE = Gauge(
    "fiml_provider_score",
    "Score in [0, 1] of a provider for a symbol in the symbol's last quote.",
    ["provider", "symbol"],
)
CONSUMER_LAG = Gauge(
    "fiml_consumer_lag",
    "Records of a partition this process has not consumed yet: the end offset "
    "it last fetched minus its position.",
    ["topic", "partition"],
)
TICKS_REJECTED = Counter(
    "fiml_ticks_rejected_total",
    "Raw records arbitration refused (sent to the DLQ), per reason.",
    ["reason"],
)
RECORDS_SKIPPED = Counter(
    "fiml_records_skipped_total",
    "Records a consumer skipped as not one of ours (see runtime/intake.py), "
    "per topic and reason: null, empty, oversize, bad_magic, "
    "unknown_schema, wrong_type, truncated, corrupt, invalid, or the "
    "snapshot loader's snapshot reasons.",
    ["topic", "reason"],
)
OUTPUTS = Counter(
    "fiml_arbitration_outputs_total",
    "Records arbitration produced, per kind: quotes, candles, trades, ticks.dlq.",
    ["kind"],
)
WEBHOOK_DELIVERIES = Counter(
    "fiml_webhook_deliveries_total",
    "Alerts the webhook worker settled, per outcome: delivered, or dead (a dead letter "
    "written after the last try).",
    ["outcome"],
)
SYMBOLS_HELD = Gauge(
    "fiml_symbols_held",
    "Symbols a service holds state of (gateway: its stores; ingest: served on demand; "
    "arbitration: the books of its partitions).",
    ["service"],
)
CONNECTIONS = Gauge("fiml_gateway_connections", "Open WebSocket connections of the gateway.")
SUBSCRIPTIONS = Gauge(
    "fiml_gateway_subscriptions", "Subscriptions of the open WebSocket connections."
)
SEND_QUEUE_DEPTH = Histogram(
    "fiml_gateway_send_queue_depth",
    "Frames already waiting in a client's send queue when one more is queued.",
    buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
SLOW_CONSUMER_DROPS = Counter(
    "fiml_gateway_slow_consumer_drops_total", "Connections closed with SLOW_CONSUMER."
)
FRAMES_SENT = Counter(
    "fiml_gateway_frames_sent_total", "Frames the gateway handed to client sockets."
)
LATENCY = Histogram(
    "fiml_end_to_end_latency_seconds",
    "From the ts_ingest of the newest quote of a data message to the moment "
    "the gateway hands that message to the socket.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def count_ingested(records: Iterable[object]) -> None:
    """Count ticks written by ingest and note each provider's last status."""
    for record in records:
        if isinstance(record, RawTick):
            TICKS_IN.labels(record.provider).inc()
        elif isinstance(record, ProviderStatus):
            set_provider_state(record.provider, record.state)


def set_provider_state(provider: str, state: str) -> None:
    """Mark ``state`` as the provider's status: 1 for it, 0 for the other states."""
    for candidate in STATES:
        PROVIDER_STATUS.labels(provider, candidate).set(1.0 if candidate == state else 0.0)


class ConsumerLag:
    """The ``fiml_consumer_lag`` series of one consumer; partitions it no longer reads are
    removed."""

    def __init__(self) -> None:
        self.exported: set[tuple[str, int]] = set()

    def export(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Set the lag of every (topic, partition) of ``lags``; drop the others."""
        for topic, partition in self.exported - lags.keys():
            CONSUMER_LAG.remove(topic, str(partition))
        for (topic, partition), lag in lags.items():
            CONSUMER_LAG.labels(topic, str(partition)).set(max(0, lag))
        self.exported = set(lags)


class ScoreExport:
    """``fiml_provider_score`` from quotes, for at most ``max_symbols`` symbols: the first ones
    seen; later symbols are left out. A provider missing from a symbol's newest quote loses
    its series."""

    def __init__(self, max_symbols: int) -> None:
        self.max_symbols = max_symbols
        self.exported: dict[str, set[str]] = {}

    def export(self, quotes: Iterable[Quote]) -> None:
        """Set the scores of each quote's symbol from that quote."""
        for quote in quotes:
            previous = self.exported.get(quote.symbol)
            if previous is None:
                if len(self.exported) >= self.max_symbols:
                    continue
                previous = self.exported[quote.symbol] = set()
            for provider in previous - quote.scores.keys():
                PROVIDER_SCORE.remove(provider, quote.symbol)
            for provider, score in quote.scores.items():
                PROVIDER_SCORE.labels(provider, quote.symbol).set(score)
            self.exported[quote.symbol] = set(quote.scores)


def exposition() -> bytes:
    """All metrics of this process in the Prometheus text format."""
    return generate_latest()
