"""The Faust worker: raw ticks in; quotes, candles, trades and rejections out.

All decisions live in the pure engine (``arbitration/engine.py``); this shell hands each
raw record to the :class:`Arbiter` and sends what comes back to the partition of the same
number as the input's, with the input's Kafka time and the marker header.

Outputs go straight to Faust's producer rather than through ``Topic.send`` (which costs
several times more per record); at-least-once still holds because Faust flushes the
producer before it commits an offset.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faust

from arbitration.arbiter import Arbiter
from arbitration.config import EngineConfig
from arbitration.engine import ROLES, SourceRecord
from arbitration.feeds import StatusFeed
from arbitration.outputs import Message
from fiml.health import faust_health
from fiml.metrics import OUTPUTS, TICKS_REJECTED
from fiml.settings import Settings
from schemas import Rejected, decode

log = logging.getLogger("fiml.arbitration")


def build_app(settings: Settings) -> faust.App:
    """A Faust app whose agent arbitrates ``ticks.raw`` for this configuration."""
    faust_root = Path(settings.cache_dir) / "faust"
    faust_root.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}-arbitration",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_enabled=False,
        store="memory://",
        datadir=str(faust_root / "{conf.name}-data"),
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.partitions,
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
    )
    raw = app.topic(settings.topic("ticks.raw"), key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
    names = {role: settings.topic(role) for role in ROLES.values()}
    feed = StatusFeed(settings, EngineConfig.from_settings(settings))
    arbiter = Arbiter(settings, settings, feed)

    @app.agent(raw, name="arbitrate")
    async def arbitrate(stream: faust.StreamT) -> None:
        await feed.start()
        try:
            async for event in stream.events():
                message = event.message
                record = SourceRecord(message.offset, message.key, message.value,
                                      round(message.timestamp * 1000) * 1000)
                for out in await arbiter.handle(message.partition, record):
                    await app.producer.send(names[out.role], out.key, out.value,
                                            message.partition, message.timestamp, out.headers)
                    count_output(out)
        finally:
            await feed.stop()

    return app


def count_output(out: Message) -> None:
    """Count a written output by kind, and a rejection by its reason."""
    OUTPUTS.labels(out.role).inc()
    if out.role == ROLES[Rejected]:
        TICKS_REJECTED.labels(decode(out.value, Rejected).reason).inc()


def run_worker(settings: Settings) -> None:
    """Run the arbitration worker until SIGTERM or Ctrl-C.

    Logging stays as ``fiml`` configured it (JSON lines or text), and the worker's progress
    spinner is off: it would write control characters between the log lines.
    """
    app = build_app(settings)
    worker = faust.Worker(app, *faust_health(app, settings), loglevel=settings.log_level.upper(),
                          quiet=True, override_logging=False)
    worker.spinner = None
    worker.execute_from_commandline()
