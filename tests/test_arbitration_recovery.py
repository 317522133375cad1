"""Bounded recovery (arbitration/snapshots.py, arbitration/arbiter.py) and the deterministic
coalescing of candle updates (arbitration/engine/partition.py)."""

from __future__ import annotations

import pickle
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbitration.arbiter import Arbiter
from arbitration.configure import engine_config
from arbitration.engine.partition import PartitionEngine, SourceRecord
from arbitration.engine.statuses import StatusTimeline
from arbitration.feeds import StatusFeed
from arbitration.snapshots import (
    FORMAT,
    MAX_SNAPSHOT_BYTES,
    MAX_STATE_BYTES,
    SnapshotError,
    SnapshotStore,
    dumps,
    loads,
)
from runtime.kafka import make_producer
from runtime.settings import Settings
from schemas import encode
from schemas.records import Candle, RawTick
from tests.factories import MS, SECOND, default_config, status, tick
from tests.support_engine import Harness
from tests.support_kafka import ingest_ms, produce

STATUSES = [status("a", 2 * SECOND, "DOWN"), status("a", 4 * SECOND, "UP")]


def market(steps: int) -> list[RawTick]:
    """Three venues quoting AAPL and trading every tenth step; c drifts a little."""
    ticks = []
    for step in range(steps):
        at = step * 100 * MS
        for i, provider in enumerate("abc"):
            ticks.append(
                tick(provider, at + i, 100.0 + (step % 7) / 100 + i / 50, latency=(i + 1) * 10 * MS)
            )
        if step % 10 == 0:
            ticks.append(tick("a", at + 5, 100.0, kind="TRADE", trade_id=f"t{step}"))
    return ticks


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 240), st.integers(1, 4))
def test_an_engine_restored_from_a_snapshot_continues_like_the_uninterrupted_one(cut, round_trips):
    ticks = market(60)
    reference = Harness(statuses=STATUSES).feed(ticks)
    harness = Harness(statuses=STATUSES)
    outputs = harness.feed(ticks[:cut])
    for _ in range(round_trips):
        harness.engine = loads(dumps(harness.engine), default_config(), harness.timeline)
    outputs += harness.feed(ticks[cut:])
    assert outputs == reference


def test_a_snapshot_leaves_the_engine_alone_and_refuses_what_is_not_ours(monkeypatch):
    harness = Harness(statuses=STATUSES)
    harness.feed(market(5))

    def untouchable(engine, name, value):
        raise AssertionError(f"dumps set {name} of the live engine")

    with monkeypatch.context() as patched:
        patched.setattr(PartitionEngine, "__setattr__", untouchable)
        data = dumps(harness.engine)
    assert data.startswith(FORMAT)
    restored = loads(data, default_config(), harness.timeline)
    assert restored.statuses is harness.timeline
    assert restored.books.keys() == harness.engine.books.keys()

    def refused(payload, reason, match=None):
        with pytest.raises(SnapshotError, match=match) as info:
            loads(payload, default_config(), harness.timeline)
        assert info.value.reason == reason

    with pytest.raises(SnapshotError, match="another engine configuration") as info:
        loads(data, default_config(freshness_us=1), harness.timeline)
    assert info.value.reason == "config"
    refused(FORMAT + zlib.compress(pickle.dumps(print)), "corrupt", r"builtins\.print")
    refused(b"garbage", "format")
    refused(zlib.compress(pickle.dumps(harness.engine.config)), "format")  # no version
    refused(FORMAT[:-1] + b"\x02" + data[len(FORMAT) :], "format", "version 3")
    refused(None, "null")
    refused(FORMAT + b"garbage", "corrupt")
    refused(FORMAT + zlib.compress(pickle.dumps({})), "corrupt", "not a snapshot: a dict")
    future_protocol = pickle.dumps(0, protocol=5).replace(b"\x80\x05", b"\x80\x09", 1)
    refused(FORMAT + zlib.compress(future_protocol), "corrupt", "unsupported pickle protocol")
    refused(data[: len(data) // 2], "truncated")
    refused(FORMAT + b"\x00" * MAX_SNAPSHOT_BYTES, "oversize")


def test_a_small_record_that_would_decompress_past_the_bound_is_refused_unread():
    bomb = FORMAT + zlib.compress(b"\x00" * (MAX_STATE_BYTES + 1), 9)
    assert len(bomb) < MAX_SNAPSHOT_BYTES // 10
    with pytest.raises(SnapshotError, match="decompresses to more than") as info:
        loads(bomb, default_config(), StatusTimeline())
    assert info.value.reason == "oversize"


@settings(max_examples=300, deadline=None)
@given(
    st.none()
    | st.binary(max_size=200)
    | st.binary(max_size=200).map(lambda tail: FORMAT + zlib.compress(tail))
)
def test_loading_anything_gives_an_engine_or_a_snapshot_error(data):
    with pytest.raises(SnapshotError):
        loads(data, default_config(), StatusTimeline())


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_a_damaged_snapshot_is_refused_or_loads_an_engine(data):
    """One byte of a real snapshot changed: never anything but an engine or SnapshotError."""
    snapshot = bytearray(dumps(Harness(statuses=STATUSES).engine))
    index = data.draw(st.integers(0, len(snapshot) - 1))
    snapshot[index] = data.draw(st.integers(0, 255))
    try:
        engine = loads(bytes(snapshot), default_config(), StatusTimeline())
    except SnapshotError:
        return
    assert isinstance(engine, PartitionEngine)


def test_candle_updates_are_coalesced_per_kafka_time_slot_and_closed_candles_kept():
    """Whatever the Kafka times, the closed candles are the same; updates only get fewer."""
    ticks = market(40)

    def run(spacing_us: int) -> list:
        harness = Harness()
        outputs = []
        for offset, t in enumerate(ticks):
            record = SourceRecord(
                offset, b"AAPL", encode(t), 1_800_000_000_000_000 + offset * spacing_us
            )
            outputs += harness.engine.process(record)
        return [o for o in outputs if isinstance(o, Candle)]

    per_tick = run(200 * MS)
    coalesced = run(10)
    assert [c for c in coalesced if c.is_closed] == [c for c in per_tick if c.is_closed]
    assert len(coalesced) < len(per_tick) / 3
    for candles in (per_tick, coalesced):
        revisions: dict[tuple, int] = {}
        for c in candles:
            key = (c.timeframe, c.open_time)
            assert c.revision == revisions.get(key, 0) + 1
            revisions[key] = c.revision


async def produce_raw(settings: Settings, ticks: list[RawTick]) -> list[SourceRecord]:
    """Write ``ticks`` to partition 0 of the raw topic; the records as the arbiter sees them."""
    written = await produce(
        settings, "ticks.raw", ticks, key=b"AAPL", partition=0, written_ms=ingest_ms
    )
    return [
        SourceRecord(meta.offset, b"AAPL", encode(t), ingest_ms(t) * 1000)
        for t, meta in zip(ticks, written, strict=True)
    ]


async def test_a_restart_replays_only_from_the_last_snapshot(topics: Settings, caplog):
    """Snapshots after the first batch, then every 50 records: at 10, 60 and 110. A new
    arbiter resumes after the last one (replaying 10 records) and before it (skipping the
    records the snapshot covers); either way its outputs are those of an uninterrupted run."""
    records = await produce_raw(topics, market(50))
    store = SnapshotStore(topics, every=50)
    await store.create_topic()
    feed = StatusFeed(topics, engine_config(topics))
    producer = make_producer(topics, "fiml-tests")
    await feed.start()
    await producer.start()
    try:
        first = Arbiter(topics, topics, feed, store)
        uninterrupted = []
        for start in range(0, 130, 10):
            uninterrupted += await first.handle_batch(0, records[start : start + 10])
            await first.checkpoint(producer)
        await producer.flush()
        uninterrupted += await first.handle_batch(0, records[130:])
        assert sum(len(out) for out in uninterrupted) > len(records) / 2
        for resume, replayed in ((120, 10), (100, 0)):
            again = Arbiter(topics, topics, feed, SnapshotStore(topics, every=50))
            caplog.clear()
            with caplog.at_level("INFO", logger="fiml.arbitration"):
                resumed = await again.handle_batch(0, records[resume:])
            assert (
                f"state rebuilt from {replayed} records before offset {resume} (snapshot at 110)"
            ) in caplog.text
            skipped = max(0, 110 - resume)
            assert resumed[:skipped] == [[]] * skipped
            assert resumed[skipped:] == uninterrupted[resume + skipped :]
    finally:
        await producer.stop()
        await feed.stop()
