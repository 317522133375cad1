"""What keeps the arbitration worker's Kafka side off the path of each tick: the status feed
reads ahead (arbitration/feeds.py) and output batches leave without lingering
(arbitration/sender.py)."""

from __future__ import annotations

import asyncio

from arbitration.configure import engine_config
from arbitration.feeds import StatusFeed
from arbitration.sender import BatchSender
from runtime.kafka import make_producer
from runtime.settings import Settings
from schemas import ProviderStatus, encode
from tests.factories import SECOND, T0, status
from tests.support import poll_until
from tests.support_kafka import produce, read_topic


async def write_status(settings: Settings, provider: str) -> None:
    await produce(settings, "provider.status", [status(provider, SECOND, "DOWN")])


async def test_the_status_feed_reads_ahead_and_still_reads_to_the_end_when_it_must(
    topics: Settings,
):
    feed = StatusFeed(topics, engine_config(topics))
    slack = feed.slack_us
    await feed.start()
    try:
        await feed.ensure(T0)
        await write_status(topics, "a")
        await feed.ensure(T0 + slack // 2 + 1)
        assert len(feed.timeline) == 0, "within the slack, ensure returns before any read"
        await poll_until(lambda: len(feed.timeline) == 1, within=10, interval=0.05)

        await write_status(topics, "b")
        await feed.ensure(T0 + slack + 1)
        assert len(feed.timeline) == 1, "covered by the read ahead: nothing read on the path"
        await feed.ensure(T0 + 2 * slack + 2)
        assert len(feed.timeline) == 2, "past the slack, read to the end before returning"

        await write_status(topics, "c")
        await feed.ensure(T0 + 2 * slack + slack // 2 + 3)
        await feed.ensure(T0 + 4 * slack)
        assert [s.provider for s in feed.timeline.between(None, T0 + SECOND)] == ["a", "b", "c"]
        await feed.ensure(T0 + 4 * slack + slack // 2 + 1)  # a read ahead that stop() ends
    finally:
        await feed.stop()


async def test_sent_batches_leave_at_once_whatever_the_producer_linger(topics: Settings):
    producer = make_producer(topics, "fiml-tests", linger_ms=60_000)
    await producer.start()
    try:
        sender = BatchSender(producer)
        for n in range(4):
            sender.add(
                topics.topic("provider.status"),
                n % 2,
                b"a",
                encode(ProviderStatus("a", T0 + n, "UP")),
                1_000 + n,
                [],
            )
        await sender.send()
        async with asyncio.timeout(10):
            await producer.flush()
    finally:
        await producer.stop()
    found = await read_topic(topics, "provider.status", ProviderStatus)
    assert sorted((partition, s.ts_event - T0) for partition, _, s in found) == [
        (0, 0),
        (0, 2),
        (1, 1),
        (1, 3),
    ]
