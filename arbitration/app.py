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

import logging

import faust

from arbitration.arbiter import Arbiter
from arbitration.batch_agent import batch_topic, batches
from arbitration.books import add_book_agent
from arbitration.configure import engine_config
from arbitration.engine.partition import ROLES
from arbitration.faust_worker import aiokafka_producer, make_app
from arbitration.feeds import StatusFeed, source_records
from arbitration.monitor import METRICS_PERIOD, ArbitrationMonitor
from arbitration.news import NEWS_ROLES, add_news_agent
from arbitration.relay import Relay
from arbitration.sender import BatchSender
from arbitration.snapshots import SnapshotStore
from runtime.health import Progress
from runtime.settings import Settings
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration")


def raw_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """``ticks.raw``, delivered a partition batch at a time."""
    return batch_topic(app, settings.topic(TopicRole.RAW))


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
    return app
