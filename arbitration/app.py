"""The Faust worker: raw ticks in; quotes, candles, trades and rejections out.

All decisions live in the pure engine (``arbitration/engine/``); this shell takes the raw
records in batches (``take_events``: up to ``BATCH_EVENTS``, or what arrived within
``BATCH_SECONDS``), hands each partition's records to the :class:`Arbiter` and sends what
comes back to the partition of the same number as the input's, with the input's Kafka time
and the marker header.

Outputs go to the producer of Faust's aiokafka driver as whole record batches
(``arbitration/sender.py``) rather than through ``Topic.send`` or one ``send`` per record.
At-least-once: each event of a batch is held (one more reference on its message) until
:meth:`Relay.deliver` has every output of the batch acknowledged by the broker, retrying what
failed (``arbitration/relay.py``); only then can ``take_events`` acknowledge the events and
Faust commit their offsets. A worker stopped while a batch is held commits none of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer
from faust.streams import Stream
from faust.types import EventT

from arbitration.alerting import register_alerts
from arbitration.arbiter import Arbiter
from arbitration.configure import engine_config
from arbitration.engine.partition import ROLES, SourceRecord
from arbitration.feeds import StatusFeed
from arbitration.health import faust_health
from arbitration.monitor import METRICS_PERIOD, ArbitrationMonitor
from arbitration.relay import Relay
from arbitration.sender import BatchSender
from arbitration.snapshots import SnapshotStore
from runtime.health import Progress
from runtime.private import private_attribute
from runtime.settings import Settings
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration")

BATCH_EVENTS = 4000
# How long a batch waits for more events, which each tick may wait before it is processed
# (with 20 ms the oldest tick of a batch waited 23 ms at p50 at 1 000 ticks/s); batches
# of 5 ms cost no measurably more CPU per tick (benchmarks/README.md, latency section).
BATCH_SECONDS = 0.005
MAX_POLL_RECORDS = 1000


def make_app(settings: Settings, name: str | None = None) -> faust.App:
    """The arbitration worker's Faust app (consumer group ``name``, by default
    ``<prefix>-arbitration``), without agents. Its producer gives up on a batch after
    ``FIML_DELIVERY_TIMEOUT_SECONDS`` (Faust's default is 20 minutes), so a failed send is
    retried from the log (``arbitration/relay.py``) instead of waited for.

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
        producer_request_timeout=settings.delivery_timeout_seconds,
    )


def raw_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """``ticks.raw`` as raw bytes."""
    return app.topic(
        settings.topic(TopicRole.RAW),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def build_app(settings: Settings, progress: Progress | None = None) -> faust.App:
    """A Faust app whose agent arbitrates ``ticks.raw`` for this configuration; its metrics
    timer feeds ``progress`` (for ``/healthz``) if given."""
    app = make_app(settings)
    raw = raw_topic(app, settings)
    names = {role: settings.topic(role) for role in ROLES.values()}
    feed = StatusFeed(settings, engine_config(settings))
    snapshots = SnapshotStore(settings)
    arbiter = Arbiter(settings, settings, feed, snapshots)
    relay = Relay(arbiter, names)

    @app.agent(raw, name="arbitrate")
    async def arbitrate(stream: faust.StreamT[bytes]) -> None:
        await feed.start()
        await snapshots.create_topic()
        try:
            producer = aiokafka_producer(app)
            sender = BatchSender(producer)
            # An agent gets a Stream, whose take_events its protocol type does not declare.
            batches = cast(Stream[bytes], stream).take_events(BATCH_EVENTS, within=BATCH_SECONDS)
            async for events in batches:
                for event in events:
                    event.message.incref()  # held: take_events' ack will not be the last
                await relay.deliver(sender, by_partition(events))
                for event in events:
                    event.message.decref()
                await arbiter.checkpoint(producer)
        finally:
            await feed.stop()

    monitor = ArbitrationMonitor(settings.topic(TopicRole.RAW), settings.metrics_score_symbols)

    async def export_metrics() -> None:
        monitor.export(arbiter.engines, app.consumer)
        if progress is not None:
            # The agent moves as records are delivered, and as restores replay records, but
            # not the same records again while it retries a failed batch.
            moved = (relay.delivered, None if relay.retrying else arbiter.replayed)
            progress.observe(moved, relay.pending)

    app.timer(METRICS_PERIOD)(export_metrics)
    register_alerts(app, settings, aiokafka_producer)
    return app


def aiokafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's: the batches go to it directly
    (``arbitration/sender.py``). Faust keeps it private, behind ``_ensure_producer``."""
    ensure = private_attribute(app.producer, "_ensure_producer", "faust-streaming")
    producer: AIOKafkaProducer = ensure()
    return producer


def by_partition(events: Sequence[EventT[Any]]) -> dict[int, list[SourceRecord]]:
    """The raw records of a batch of events, per partition in offset order."""
    found: dict[int, list[SourceRecord]] = {}
    for event in events:
        message = event.message
        records = found.get(message.partition)
        if records is None:
            records = found[message.partition] = []
        records.append(
            SourceRecord(
                message.offset, message.key, message.value, round(message.timestamp * 1000) * 1000
            )
        )
    return found


def run_worker(settings: Settings, app: faust.App | None = None) -> None:
    """Run the arbitration worker (or another ``app``) until SIGTERM or Ctrl-C.

    Logging stays as ``fiml`` configured it (JSON lines or text), and the worker's progress
    spinner is off: it would write control characters between the log lines.
    """
    progress = Progress(settings.consumer_stall_seconds)
    app = app or build_app(settings, progress)
    worker = faust.Worker(
        app,
        *faust_health(app, settings, progress),
        loglevel=settings.log_level.upper(),
        quiet=True,
        override_logging=False,
    )
    worker.spinner = None
    worker.execute_from_commandline()
