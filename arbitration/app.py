"""The Faust worker: raw ticks in; quotes, candles, trades and rejections out.

All decisions live in the pure engine (``arbitration/engine.py``); this shell takes the raw
records in batches (``take_events``: up to ``BATCH_EVENTS``, or what arrived within
``BATCH_SECONDS``), hands each partition's records to the :class:`Arbiter` and sends what
comes back to the partition of the same number as the input's, with the input's Kafka time
and the marker header.

Outputs go to the producer of Faust's aiokafka driver as whole record batches
(``arbitration/sender.py``) rather than through ``Topic.send`` or one ``send`` per record;
at-least-once still holds because Faust flushes the producer before it commits an offset,
and ``take_events`` acknowledges a batch's events only after its outputs were handed over.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import faust
from faust.types import EventT

from arbitration.arbiter import Arbiter
from arbitration.config import EngineConfig
from arbitration.engine import ROLES, SourceRecord
from arbitration.feeds import StatusFeed
from arbitration.monitor import METRICS_PERIOD, ArbitrationMonitor
from arbitration.outputs import Message
from arbitration.sender import BatchSender
from arbitration.snapshots import SnapshotStore
from fiml.health import faust_health
from fiml.metrics import OUTPUTS, TICKS_REJECTED
from fiml.settings import Settings

log = logging.getLogger("fiml.arbitration")

BATCH_EVENTS = 4000
# How long a batch waits for more events, which each tick may wait before it is processed
# (with 20 ms the oldest tick of a batch waited 23 ms at p50 at 1 000 ticks/s); batches
# of 5 ms cost no measurably more CPU per tick (benchmarks/README.md, latency section).
BATCH_SECONDS = 0.005
MAX_POLL_RECORDS = 1000


def make_app(settings: Settings, name: str | None = None) -> faust.App:
    """The arbitration worker's Faust app (consumer group ``name``, by default
    ``<prefix>-arbitration``), without agents.

    Offsets are committed every second or every 10 000 records: each commit first waits
    for the producer to flush, inside Faust's fetch loop, so committing more often stalls
    the stream (recovery replays at most what came after the last commit, see
    ``arbitration/arbiter.py``). A poll takes at most ``MAX_POLL_RECORDS`` records: what a
    fetch brought beyond them stays as Kafka's compact record batches instead of becoming
    Python records all at once (with a backlog, up to 1 MiB per partition), which kept the
    worker's memory tied to its backlog (about 18 MB more at the peak, same throughput).
    """
    faust_root = Path(settings.cache_dir) / "faust"
    faust_root.mkdir(parents=True, exist_ok=True)
    return faust.App(
        name or f"{settings.topic_prefix}-arbitration",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_enabled=False,
        store="memory://",
        datadir=str(faust_root / "{conf.name}-data"),
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.partitions,
        producer_acks=-1,
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        broker_max_poll_records=MAX_POLL_RECORDS,
    )


def raw_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """``ticks.raw`` as raw bytes."""
    return app.topic(settings.topic("ticks.raw"), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")


def build_app(settings: Settings) -> faust.App:
    """A Faust app whose agent arbitrates ``ticks.raw`` for this configuration."""
    app = make_app(settings)
    raw = raw_topic(app, settings)
    names = {role: settings.topic(role) for role in ROLES.values()}
    feed = StatusFeed(settings, EngineConfig.from_settings(settings))
    snapshots = SnapshotStore(settings)
    arbiter = Arbiter(settings, settings, feed, snapshots)

    @app.agent(raw, name="arbitrate")
    async def arbitrate(stream: faust.StreamT) -> None:
        await feed.start()
        await snapshots.create_topic()
        try:
            producer = app.producer._ensure_producer()
            sender = BatchSender(producer)
            async for events in stream.take_events(BATCH_EVENTS, within=BATCH_SECONDS):
                for partition, records in by_partition(events).items():
                    results = await arbiter.handle_batch(partition, records)
                    for record, outputs in zip(records, results, strict=True):
                        timestamp_ms = record.timestamp_us // 1000
                        for out in outputs:
                            sender.add(names[out.role], partition, out.key, out.value,
                                       timestamp_ms, out.headers)
                    count_outputs(out for outputs in results for out in outputs)
                await sender.send()
                await arbiter.checkpoint(producer)
        finally:
            await feed.stop()

    monitor = ArbitrationMonitor(settings.topic("ticks.raw"), settings.metrics_score_symbols)

    @app.timer(METRICS_PERIOD)
    async def export_metrics() -> None:
        monitor.export(arbiter.engines, app.consumer)

    return app


def by_partition(events: Sequence[EventT]) -> dict[int, list[SourceRecord]]:
    """The raw records of a batch of events, per partition in offset order."""
    found: dict[int, list[SourceRecord]] = {}
    for event in events:
        message = event.message
        records = found.get(message.partition)
        if records is None:
            records = found[message.partition] = []
        records.append(SourceRecord(message.offset, message.key, message.value,
                                    round(message.timestamp * 1000) * 1000))
    return found


def count_outputs(outputs: Iterable[Message]) -> None:
    """Count written outputs by kind, and rejections by their reason."""
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for out in outputs:
        kinds[out.role] += 1
        if out.reason is not None:
            reasons[out.reason] += 1
    for kind, n in kinds.items():
        OUTPUTS.labels(kind).inc(n)
    for reason, n in reasons.items():
        TICKS_REJECTED.labels(reason).inc(n)


def run_worker(settings: Settings, app: faust.App | None = None) -> None:
    """Run the arbitration worker (or another ``app``) until SIGTERM or Ctrl-C.

    Logging stays as ``fiml`` configured it (JSON lines or text), and the worker's progress
    spinner is off: it would write control characters between the log lines.
    """
    app = app or build_app(settings)
    worker = faust.Worker(app, *faust_health(app, settings), loglevel=settings.log_level.upper(),
                          quiet=True, override_logging=False)
    worker.spinner = None
    worker.execute_from_commandline()
