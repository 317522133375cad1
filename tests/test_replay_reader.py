"""The replay reader on the real broker: ranges, event-time order, errors, the hand-over."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from runtime.readers import ReaderPool
from runtime.replay import Replay
from runtime.replay_request import ReplayError, ReplayRequest
from schemas import Candle, Trade
from schemas.times import LAST_MICROS
from tests.factories import BASE_US, MS, REPLAY_SYMBOLS, quote, replay_trade
from tests.support import poll_until
from tests.support_kafka import expire_oldest, ingest_ms, produce, read_topic


def expected(stored: list[tuple], symbols: set[str], start: int, end: int) -> list[tuple]:
    chosen = [
        (r.ts_event, p, o, r)
        for p, o, r in stored
        if r.symbol in symbols and start <= r.ts_event <= end
    ]
    return [(p, o, r) for _, p, o, r in sorted(chosen, key=lambda row: row[:3])]


async def collect(replay: Replay, limit: int | None = None) -> list:
    found = []
    async for item in replay.records():
        found.append(item)
        if limit is not None and len(found) >= limit:
            break
    return found


async def test_a_range_returns_exactly_the_topics_records_in_event_time_order(topics):
    await produce(topics, "trades", [replay_trade(n) for n in range(400)], written_ms=ingest_ms)
    stored = await read_topic(topics, "trades", Trade)
    start, end = BASE_US + 50 * MS, BASE_US + 300 * MS
    async with Replay(
        topics, ReplayRequest("trades", ("ETH/USDT", "AAPL"), start, end), batch=7
    ) as replay:
        found = await collect(replay)
    async with Replay(topics, ReplayRequest("trades", ("ETH/USDT", "AAPL"), start, end)) as replay:
        chunks = [chunk async for chunk in replay.chunks(10)]
    assert [item for chunk in chunks for item in chunk] == found
    assert [len(chunk) for chunk in chunks] == [10] * 12 + [6]
    want = expected(stored, {"ETH/USDT", "AAPL"}, start, end)
    assert len(want) == 126
    assert [(i.partition, i.offset, i.record) for i in found] == want
    assert [i.time for i in found] == sorted(i.time for i in found)
    assert not any(i.live for i in found)


async def test_a_range_past_the_last_record_ends_at_the_log_end(topics):
    await produce(topics, "trades", [replay_trade(n) for n in range(20)], written_ms=ingest_ms)
    async with Replay(
        topics, ReplayRequest("trades", tuple(REPLAY_SYMBOLS), BASE_US, BASE_US + 10**12)
    ) as replay:
        found = await asyncio.wait_for(collect(replay), 10)
    assert [i.record.trade_id for i in found] == [f"t{n}" for n in range(20)]


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (BASE_US - 60_000 * MS, None, "older than the retention"),
        (BASE_US + 10 * MS, BASE_US + 5 * MS, "end is before start"),
        (BASE_US, 4_102_444_800_000_000, "end is in the future"),
    ],
)
async def test_bad_ranges_raise_replay_errors(topics, start, end, reason):
    await produce(topics, "trades", [replay_trade(n) for n in range(5)], written_ms=ingest_ms)
    await expire_oldest(topics, "trades")
    with pytest.raises(ReplayError, match=reason):
        async with Replay(topics, ReplayRequest("trades", ("AAPL",), start, end)):
            pass


async def test_a_topic_that_lost_no_record_replays_from_any_start(topics):
    """The first candle of a timeframe is written well after its open time; nothing was
    deleted, so a start at that open time, or an hour before, is no error."""
    first = Candle(
        symbol="AAPL",
        timeframe="1m",
        open_time=BASE_US,
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=10.0,
        is_closed=True,
        revision=3,
        seq=7,
    )
    await produce(topics, "candles", [first], written_ms=BASE_US // MS + 30_000)
    for start in (BASE_US, BASE_US - 3_600_000 * MS):
        async with Replay(
            topics,
            ReplayRequest("candles", ("AAPL",), start, BASE_US + 60_000 * MS, timeframe="1m"),
        ) as replay:
            assert [item.record for item in await collect(replay)] == [first]


async def test_a_page_past_the_deleted_records_is_not_refused(topics):
    await produce(topics, "trades", [replay_trade(n) for n in range(8)], written_ms=ingest_ms)
    stored = await read_topic(topics, "trades", Trade)
    await expire_oldest(topics, "trades")
    start = BASE_US - 3_600_000 * MS
    with pytest.raises(ReplayError, match="older than the retention"):
        async with Replay(topics, ReplayRequest("trades", tuple(REPLAY_SYMBOLS), start)):
            pass
    after = {partition: 1 for partition in range(topics.partitions)}
    async with Replay(
        topics,
        ReplayRequest("trades", tuple(REPLAY_SYMBOLS), start, BASE_US + 10 * MS),
        after=after,
    ) as replay:
        found = await collect(replay)
    assert sorted(i.record.trade_id for i in found) == sorted(
        record.trade_id for _, offset, record in stored if offset >= 1
    )


async def test_a_replay_cancelled_while_opening_leaves_no_consumer_running(topics):
    await produce(topics, "trades", [replay_trade(n) for n in range(5)], written_ms=ingest_ms)
    replay = Replay(
        topics, ReplayRequest("trades", tuple(REPLAY_SYMBOLS), BASE_US, BASE_US + 10 * MS)
    )
    opening = asyncio.create_task(replay.open())
    await poll_until(lambda: replay.consumer is not None, 10, interval=0)  # now starting
    consumer = replay.consumer
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert replay.consumer is None and consumer._closed


async def test_an_undecodable_record_is_skipped_with_a_warning(topics, caplog):
    await produce(
        topics, "trades", [b"\x00\x00\x00\x00\x05\xff"], key=b"AAPL", written_ms=BASE_US // MS
    )
    await produce(topics, "trades", [replay_trade(2, "AAPL")], written_ms=ingest_ms)
    async with Replay(
        topics, ReplayRequest("trades", ("AAPL",), BASE_US, BASE_US + 10 * MS)
    ) as replay:
        found = await collect(replay)
    assert [item.record.trade_id for item in found] == ["t2"]
    assert f"skipped a record at {topics.topic('trades')}-" in caplog.text
    assert "(truncated)" in caplog.text


async def test_a_record_no_date_can_show_is_skipped_even_when_following_live(topics):
    far = dataclasses.replace(replay_trade(1, "AAPL"), trade_id="far", ts_event=LAST_MICROS + 1)
    async with Replay(topics, ReplayRequest("trades", ("AAPL",), BASE_US)) as replay:
        await produce(topics, "trades", [far, replay_trade(2, "AAPL")], written_ms=ingest_ms)
        found = await asyncio.wait_for(collect(replay, limit=1), 20)
    assert [item.record.trade_id for item in found] == ["t2"]


async def test_an_unknown_stream_is_a_replay_error(topics):
    with pytest.raises(ReplayError, match="unknown stream"):
        Replay(topics, ReplayRequest("orders", ("AAPL",), BASE_US))


async def test_without_end_the_replay_hands_over_to_live_with_no_gap_and_no_duplicate(topics):
    await produce(topics, "trades", [replay_trade(n) for n in range(100)], written_ms=ingest_ms)
    async with Replay(
        topics, ReplayRequest("trades", tuple(REPLAY_SYMBOLS), BASE_US + 10 * MS), batch=9
    ) as replay:
        handover = dict(replay.handover)
        writer = asyncio.create_task(
            produce(
                topics, "trades", [replay_trade(n) for n in range(100, 300)], written_ms=ingest_ms
            )
        )
        found = await asyncio.wait_for(collect(replay, limit=290), 20)
        await writer
    stored = await read_topic(topics, "trades", Trade)
    replayed = [i for i in found if not i.live]
    live = [i for i in found if i.live]
    assert [i.record.trade_id for i in replayed] == [f"t{n}" for n in range(10, 100)]
    assert all(i.offset < handover[i.partition] for i in replayed)
    assert all(i.offset >= handover[i.partition] for i in live)
    keys = [(i.partition, i.offset) for i in found]
    assert len(set(keys)) == len(keys) == 290
    assert sorted(keys) == sorted((p, o) for p, o, r in stored if r.ts_event >= BASE_US + 10 * MS)
    for partition in {i.partition for i in live}:
        offsets = [i.offset for i in live if i.partition == partition]
        assert offsets == sorted(offsets)


async def test_one_symbols_range_reads_only_the_partition_its_key_maps_to(topics):
    """Where the real producer put each symbol is where the reader looks, and nowhere else."""
    symbols = [f"S{n:02d}" for n in range(30)]
    written = await produce(
        topics,
        "quotes",
        [quote(s, 100.0, seq) for seq in range(5) for s in symbols],
        written_ms=ingest_ms,
    )
    placed = {s: written[n].partition for n, s in enumerate(symbols)}
    assert len(set(placed.values())) == topics.partitions  # the symbols span every partition
    for symbol in ("S00", "S17"):
        request = ReplayRequest("quotes", (symbol,), BASE_US, BASE_US + 10 * MS)
        async with Replay(topics, request) as replay:
            assert replay.consumer is not None
            assert {tp.partition for tp in replay.consumer.assignment()} == {placed[symbol]}
            found = await collect(replay)
        assert [item.record.seq for item in found] == [0, 1, 2, 3, 4]
        assert {item.partition for item in found} == {placed[symbol]}


async def test_a_scan_limit_refuses_a_longer_read_or_cuts_it_where_it_says(topics):
    await produce(topics, "trades", [replay_trade(n) for n in range(200)], written_ms=ingest_ms)
    stored = await read_topic(topics, "trades", Trade)
    request = ReplayRequest("trades", ("AAPL",), BASE_US, BASE_US + 200 * MS)
    (partition,) = {p for p, _, r in stored if r.symbol == "AAPL"}
    held = sorted((o, r) for p, o, r in stored if p == partition)
    with pytest.raises(ReplayError, match="more than the 20 one request may read"):
        async with Replay(topics, request, scan_limit=20):
            pass
    async with Replay(topics, request, scan_limit=20, truncate=True) as replay:
        cut = await collect(replay)
    assert replay.cut == {partition: 20}
    assert [i.record for i in cut] == [r for o, r in held[:20] if r.symbol == "AAPL"]
    async with Replay(topics, request, scan_limit=len(held)) as replay:  # at the cap: all
        whole = await collect(replay)
    assert replay.cut == {}
    assert [i.record for i in whole] == [r for _, r in held if r.symbol == "AAPL"] != []


async def test_replays_of_one_pool_reuse_its_consumers_and_wait_for_a_free_one(topics):
    await produce(topics, "trades", [replay_trade(n) for n in range(40)], written_ms=ingest_ms)
    request = ReplayRequest("trades", ("AAPL", "MSFT"), BASE_US, BASE_US + 40 * MS)
    pool = ReaderPool(topics, 2)

    async def read() -> int:
        async with Replay(topics, request, readers=pool) as replay:
            return len(await collect(replay))

    counts = [await read() for _ in range(3)]
    assert pool.created == 1  # one after the other: the same consumer
    counts += await asyncio.gather(*(read() for _ in range(5)))  # three wait for one
    assert counts == [20] * 8
    assert pool.created == 2 and len(pool.idle) == 2
    assert all(c.paused() == c.assignment() != set() for c in pool.idle)  # fetching nothing
    consumers = list(pool.idle)
    await pool.close()
    assert all(consumer._closed for consumer in consumers)
