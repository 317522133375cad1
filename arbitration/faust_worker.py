"""The Faust app the workers are built on (the arbitration worker, ``arbitration/app.py``;
the alerts worker, ``arbitration/alerts_app.py``), its producer, and running a worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import faust
import uvloop
from aiokafka import AIOKafkaProducer

from arbitration.batch_delivery import SCHEME, register
from arbitration.health import faust_health
from arbitration.kafka_auth import faust_credentials
from arbitration.quiet_monitor import QuietMonitor
from runtime.health import Progress
from runtime.private import private_attribute
from runtime.settings import Settings

MAX_POLL_RECORDS = 1000


def make_app(settings: Settings, name: str | None = None) -> faust.App:
    """A worker's Faust app (consumer group ``name``, by default ``<prefix>-arbitration``),
    without agents. Its producer gives up on a batch after
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
    partition, fetched alone, was waited for at the broker (then Faust's 1.5 s
    ``fetch_max_wait_ms``) and capped a worker at about 20 000 records/s.
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


def aiokafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's: the batches go to it directly
    (``arbitration/sender.py``). Faust keeps it private, behind ``_ensure_producer``."""
    ensure = private_attribute(app.producer, "_ensure_producer", "faust-streaming")
    producer: AIOKafkaProducer = ensure()
    return producer


def run_worker(settings: Settings, build: Callable[[Settings, Progress], faust.App]) -> None:
    """Run the worker of the app ``build`` makes until SIGTERM or Ctrl-C; its health
    endpoints report the :class:`Progress` the app feeds.

    Logging stays as ``fiml`` configured it (JSON lines or text), and the worker's progress
    spinner is off: it would write control characters between the log lines. The event
    loops (the worker's and that of Faust's consumer thread) are uvloop's.
    """
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    progress = Progress(settings.consumer_stall_seconds)
    app = build(settings, progress)
    worker = faust.Worker(
        app,
        *faust_health(app, settings, progress),
        loglevel=settings.log_level.upper(),
        quiet=True,
        override_logging=False,
    )
    worker.spinner = None
    worker.execute_from_commandline()
