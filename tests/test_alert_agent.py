"""The alerts agent's batch step (arbitration/alerting.py) on the real broker, without
Faust: a worker that dies after writing a batch's alerts and before its checkpoint is
replaced by one that, given the same records again, writes no alert twice; the alerts in
the log are those a back-test of the rule over the same records finds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from types import SimpleNamespace

import pytest

from arbitration import alert_checkpoints
from arbitration.alert_checkpoints import Checkpoint, CheckpointTooLarge, decode
from arbitration.alert_checkpoints import encode as encode_checkpoint
from arbitration.alerting import AlertWorker
from domain.alerts.backtest import backtest
from domain.alerts.firing import Source
from runtime.alert_rules import RuleFeed
from runtime.kafka import make_producer
from schemas.alerts import FiredAlert
from schemas.codec import encode
from tests.support_alerts import SECOND, T0, quote, rule
from tests.support_kafka import produce, read_topic


@contextlib.asynccontextmanager
async def running(settings):
    """An AlertWorker whose rules were read, and a producer."""
    worker = AlertWorker(settings)
    feed = asyncio.create_task(worker.rules.run())
    producer = make_producer(settings, "fiml-tests")
    await producer.start()
    try:
        await asyncio.wait_for(worker.rules.ready.wait(), 30)
        yield worker, producer
    finally:
        await producer.stop()
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed


def events_of(settings, written, records):
    """The fetched records (as a batch carries them) of quotes written to partition 0 of
    fiml.quotes."""
    topic = settings.topic("quotes")
    return [
        SimpleNamespace(
            topic=topic, partition=0, offset=meta.offset, key=b"AAA", value=encode(record)
        )
        for meta, record in zip(written, records, strict=True)
    ]


async def test_a_crash_before_the_checkpoint_writes_no_alert_twice(topics):
    settings = topics
    crosses = rule("crosses", level=100.0)
    await produce(settings, "alerts.rules", [crosses], key=b"r1")
    prices = [90, 110, 90, 120, 80]
    records = [quote("AAA", T0 + i * SECOND, price) for i, price in enumerate(prices)]
    written = await produce(settings, "quotes", records, partition=0)
    events = events_of(settings, written, records)

    async with running(settings) as (worker, producer):
        await worker.process(producer, events[:2])

        async def crash(*_):
            raise RuntimeError("killed before the checkpoint")

        worker.store.save = crash
        with pytest.raises(RuntimeError):
            await worker.process(producer, events[2:4])
    first = [alert for _, _, alert in await read_topic(settings, "alerts.fired", FiredAlert)]
    assert len(first) == 3

    async with running(settings) as (worker, producer):
        await worker.process(producer, events[:4])  # redelivered from the last commit
        await worker.process(producer, events[4:])
    fired = [alert for _, _, alert in await read_topic(settings, "alerts.fired", FiredAlert)]

    sources = [Source(settings.topic("quotes"), 0, meta.offset) for meta in written]
    expected = backtest(crosses, zip(sources, records, strict=True))
    assert [alert.alert_id for alert in fired] == [alert.alert_id for alert in expected]
    assert len(fired) == 4
    assert [alert.values["price"] for alert in fired] == [110, 90, 120, 80]


async def test_bad_input_and_a_bad_checkpoint_are_skipped(topics):
    settings = topics
    await produce(settings, "alerts.rules", [rule("price_above", level=100.0)], key=b"r1")
    await produce(settings, "alerts.rules", [b"not a rule"], key=b"r2")
    await produce(settings, "alerts.state", [b"not a checkpoint"], key=b"0", partition=0)
    record = quote("AAA", T0, 120)
    written = await produce(settings, "quotes", [b"\x00junk", record], partition=0)
    events = events_of(settings, written, [record, record])
    events[0].value = b"\x00junk"
    async with running(settings) as (worker, producer):
        assert set(worker.rules.rules) == {"r1"}
        await worker.process(producer, events)
        checkpoint = worker.partitions[0]
    fired = [alert for _, _, alert in await read_topic(settings, "alerts.fired", FiredAlert)]
    assert [(alert.rule_id, alert.source_offset) for alert in fired] == [("r1", written[1].offset)]
    assert checkpoint.next == {settings.topic("quotes"): written[1].offset + 1}
    with pytest.raises(ValueError):
        decode(b"not a checkpoint")


def test_a_checkpoint_the_next_start_could_not_read_is_never_written(monkeypatch):
    checkpoint = Checkpoint(next={"quotes": 7}, fired_next=3)
    assert decode(encode_checkpoint(checkpoint)).next == {"quotes": 7}
    monkeypatch.setattr(alert_checkpoints, "MAX_CHECKPOINT_BYTES", 8)
    with pytest.raises(CheckpointTooLarge, match="over the limits"):
        encode_checkpoint(checkpoint)


async def test_a_rule_feed_read_again_drops_the_rules_the_topic_no_longer_holds(topics):
    """After a restart the feed reads the topic again over the rules it held: one whose
    tombstone was compacted away meanwhile is dropped, and its listener told."""
    await produce(topics, "alerts.rules", [rule("price_above", level=100.0)], key=b"r1")
    told: list[tuple[str, bool]] = []
    feed = RuleFeed(topics, lambda rule_id, known: told.append((rule_id, known is None)))
    feed.rules["ghost"] = dataclasses.replace(rule("price_above", level=1.0), rule_id="ghost")
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.ready.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert set(feed.rules) == {"r1"}
    assert ("ghost", True) in told and ("r1", False) in told
