"""Prometheus metrics of every service, in the default registry (each service is its own
process and exports only what it updates). ``exposition()`` is the body of ``GET /metrics``."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from schemas.records import ProviderStatus, RawTick

CONTENT_TYPE = CONTENT_TYPE_LATEST

STATUS_VALUES = {"UP": 1.0, "DEGRADED": 0.5, "DOWN": 0.0}

TICKS_IN = Counter("fiml_ticks_in_total", "Raw ticks ingest wrote to Kafka, per provider.",
                   ["provider"])
PROVIDER_STATUS = Gauge("fiml_provider_status",
                        "Last status a provider reported to ingest: 1 UP, 0.5 DEGRADED, 0 DOWN.",
                        ["provider"])
TICKS_REJECTED = Counter("fiml_ticks_rejected_total",
                         "Raw records arbitration refused (sent to the DLQ), per reason.",
                         ["reason"])
OUTPUTS = Counter("fiml_arbitration_outputs_total",
                  "Records arbitration produced, per kind: quotes, candles, trades, ticks.dlq.",
                  ["kind"])
CONNECTIONS = Gauge("fiml_gateway_connections", "Open WebSocket connections of the gateway.")
SUBSCRIPTIONS = Gauge("fiml_gateway_subscriptions",
                      "Subscriptions of the open WebSocket connections.")
SEND_QUEUE_DEPTH = Histogram("fiml_gateway_send_queue_depth",
                             "Frames already waiting in a client's send queue when one more "
                             "is queued.", buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
SLOW_CONSUMER_DROPS = Counter("fiml_gateway_slow_consumer_drops_total",
                              "Connections closed with SLOW_CONSUMER.")
FRAMES_SENT = Counter("fiml_gateway_frames_sent_total",
                      "Frames the gateway handed to client sockets.")
LATENCY = Histogram("fiml_end_to_end_latency_seconds",
                    "From the ts_ingest of the newest quote of a data message to the moment "
                    "the gateway hands that message to the socket.",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                             2.5, 5.0, 10.0))


def count_ingested(records: Iterable[RawTick | ProviderStatus]) -> None:
    """Count ticks written by ingest and note each provider's last status."""
    for record in records:
        if isinstance(record, RawTick):
            TICKS_IN.labels(record.provider).inc()
        else:
            PROVIDER_STATUS.labels(record.provider).set(STATUS_VALUES.get(record.state, 0.0))


def exposition() -> bytes:
    """All metrics of this process in the Prometheus text format."""
    return generate_latest()
