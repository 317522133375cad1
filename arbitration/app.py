"""The Faust worker: raw ticks in; quotes, candles, trades and rejections out.

All decisions live in the pure engine (``arbitration/engine/``); this shell takes the raw
records a fetched partition batch at a time (``arbitration/batch_delivery.py``: no Faust
event per record), hands each batch, with the batches queued behind it, to the
:class:`Arbiter` and sends what comes back to the partition of the same number as the
input's, with the input's Kafka time and the marker header.

Outputs go to the producer of Faust's aiokafka driver as whole record batches
(``arbitration/sender.py``) rather than through ``Topic.send`` or one ``send`` per record.
At-least-once: a batch is acknowledged to Faust only once :meth:`Relay.deliver` has every
output of it acknowledged by the broker, retrying what failed (``arbitration/relay.py``);
only then can Faust commit its offsets. A worker stopped while a batch is in process commits
none of it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import faust
import uvloop
from aiokafka import AIOKafkaProducer

from arbitration.alerting import register_alerts
from arbitration.arbiter import Arbiter
from arbitration.batch_agent import batch_topic, batches, source_records
from arbitration.batch_delivery import SCHEME, register
from arbitration.books import add_book_agent
from arbitration.configure import engine_config
from arbitration.engine.partition import ROLES
from arbitration.feeds import StatusFeed
from arbitration.health import faust_health
from arbitration.kafka_auth import faust_credentials
from arbitration.monitor import METRICS_PERIOD, ArbitrationMonitor
from arbitration.news import NEWS_ROLES, add_news_agent
from arbitration.quiet_monitor import QuietMonitor
from arbitration.relay import Relay
from arbitration.sender import BatchSender
from arbitration.snapshots import SnapshotStore
from runtime.health import Progress
from runtime.private import private_attribute
from runtime.settings import Settings
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration")

MAX_POLL_RECORDS = 1000
# Partition batches (up to MAX_POLL_RECORDS records each) queued for the agent; a full
# queue blocks the fetch loop.
QUEUED_BATCHES = 4


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

    The broker URL selects the batch-delivery transport (``arbitration/batch_delivery.py``).
    Faust's leader topic is off: the worker has no leader-only work, and its always empty
    partition, fetched alone, held the fetch for Faust's 1.5 s ``fetch_max_wait_ms`` and
    capped a worker at about 20 000 records/s.
    """
    register()
    faust_root = Path(settings.cache_dir) / "faust"
    faust_root.mkdir(parents=True, exist_ok=True)
    return faust.App(
        name or f"{settings.topic_prefix}-arbitration",
        broker=f"{SCHEME}://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
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
        topic_disable_leader=True,
        Monitor=QuietMonitor,
    )


def raw_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """``ticks.raw``, delivered a partition batch at a time."""
    return batch_topic(app, settings.topic(TopicRole.RAW), maxsize=QUEUED_BATCHES)


def bytes_topic(app: faust.App, settings: Settings, role: TopicRole) -> faust.TopicT:
    """The topic of ``role`` as raw bytes, a record at a time."""
    return app.topic(
        settings.topic(role),
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
            async for group in batches(stream):  # acknowledged when the body returns
                await relay.deliver(sender, source_records(group))
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
    add_news_agent(app, settings, *(bytes_topic(app, settings, r) for r in NEWS_ROLES))
    add_book_agent(app, settings, aiokafka_producer)
    register_alerts(app, settings, aiokafka_producer)
    return app


def aiokafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's: the batches go to it directly
    (``arbitration/sender.py``). Faust keeps it private, behind ``_ensure_producer``."""
    ensure = private_attribute(app.producer, "_ensure_producer", "faust-streaming")
    producer: AIOKafkaProducer = ensure()
    return producer


def run_worker(settings: Settings, app: faust.App | None = None) -> None:
    """Run the arbitration worker (or another ``app``) until SIGTERM or Ctrl-C.

    Logging stays as ``fiml`` configured it (JSON lines or text), and the worker's progress
    spinner is off: it would write control characters between the log lines. The event
    loops (the worker's and that of Faust's consumer thread) are uvloop's.
    """
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
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
