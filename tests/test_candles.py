"""Tests of the candle builder (arbitration/engine/candles.py) and of candles through the
engine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from arbitration.engine.candles import CandleSeries, bucket_start
from schemas.records import Candle, Quote
from schemas.times import TIMEFRAMES
from tests.factories import MS, SECOND, T0, default_config, tick
from tests.support_engine import Harness

LATENESS = 3 * SECOND


def add_price(series: CandleSeries, ts_us: int, seq: int, price: float) -> list[Candle]:
    """The records of the candles one quote price changes: marked, then flushed at once."""
    series.mark_price(ts_us, seq, price)
    return series.flush()


def add_trade(series: CandleSeries, ts_us: int, seq: int, amount: float) -> list[Candle]:
    """The records of the priced candles one trade changes: marked, then flushed at once."""
    series.mark_trade(ts_us, seq, amount)
    return series.flush()


def test_buckets_are_aligned_to_utc():
    assert bucket_start(T0 + 1_500_000, TIMEFRAMES["1s"]) == T0 + 1_000_000
    assert bucket_start(T0 + 61 * SECOND, TIMEFRAMES["1m"]) == T0 + 60 * SECOND
    day = TIMEFRAMES["1d"]
    assert bucket_start(T0, day) % day == 0 and T0 - bucket_start(T0, day) == 37_800 * SECOND


def test_ohlc_of_one_bucket_and_revisions():
    series = CandleSeries("AAPL", LATENESS)
    records = []
    for seq, (at, price) in enumerate([(100, 10.0), (200, 12.0), (300, 9.0), (400, 11.0)]):
        records += [c for c in add_price(series, T0 + at * MS, seq, price) if c.timeframe == "1s"]
    last = records[-1]
    assert (last.open, last.high, last.low, last.close) == (10.0, 12.0, 9.0, 11.0)
    assert [c.revision for c in records] == [1, 2, 3, 4]
    assert not any(c.is_closed for c in records)


def test_a_late_quote_inside_lateness_revises_open_and_close_by_event_time():
    series = CandleSeries("AAPL", LATENESS)
    add_price(series, T0 + 500 * MS, 1, 10.0)
    add_price(series, T0 + 600 * MS, 2, 11.0)
    revised = next(c for c in add_price(series, T0 + 100 * MS, 3, 9.5) if c.timeframe == "1s")
    assert (revised.open, revised.close, revised.low) == (9.5, 11.0, 9.5)
    assert revised.revision == 3 and revised.seq == 3


def test_unchanged_candle_writes_nothing():
    series = CandleSeries("AAPL", LATENESS)
    add_price(series, T0 + 100 * MS, 1, 10.0)
    assert add_price(series, T0 + 100 * MS, 2, 10.0) == []


def test_candles_close_once_event_time_passes_end_plus_lateness():
    series = CandleSeries("AAPL", LATENESS)
    add_price(series, T0 + 100 * MS, 1, 10.0)
    assert series.close_until(T0 + SECOND + LATENESS - 1, 5) == []
    closed = series.close_until(T0 + SECOND + LATENESS, 6)
    assert [(c.timeframe, c.is_closed, c.revision, c.seq) for c in closed] == [("1s", True, 2, 6)]
    assert series.close_until(T0 + 10 * SECOND, 7) == []


def test_trades_add_volume_and_count_to_priced_candles_only():
    series = CandleSeries("AAPL", LATENESS)
    assert add_trade(series, T0 + 100 * MS, 1, 2.5) == []
    first = add_price(series, T0 + 200 * MS, 2, 10.0)
    assert {(c.volume, c.trade_count) for c in first} == {(2.5, 1)}
    more = add_trade(series, T0 + 300 * MS, 3, 1.5)
    assert len(more) == len(TIMEFRAMES)
    assert {(c.volume, c.trade_count) for c in more} == {(4.0, 2)}


def test_a_bucket_with_trades_but_no_quote_yields_no_candle():
    series = CandleSeries("AAPL", LATENESS)
    add_trade(series, T0 + 100 * MS, 1, 2.5)
    assert series.close_until(T0 + 2 * 86_400 * SECOND, 2) == []


def test_late_ticks_beyond_lateness_go_to_the_dlq_and_leave_closed_candles_alone():
    harness = Harness(default_config(lateness_us=LATENESS))
    harness.send(tick("a", 100 * MS, 100.0))
    out = harness.send(tick("a", SECOND + LATENESS + 1, 100.1))
    closed = [c for c in out if isinstance(c, Candle) and c.is_closed]
    assert [c.timeframe for c in closed] == ["1s"]
    late = harness.send(tick("b", 200 * MS, 100.0))
    assert [r.reason for r in late] == ["late"]


# --- properties ----------------------------------------------------------------------------

events = st.lists(
    st.tuples(
        st.booleans(), st.integers(0, 180 * SECOND), st.floats(1.0, 1000.0), st.floats(0.001, 100.0)
    ),
    max_size=120,
)


def run_series(items):
    series = CandleSeries("AAPL", LATENESS)
    watermark = None
    records = []
    for seq, (is_trade, at, price, amount) in enumerate(items):
        ts = T0 + at
        if watermark is not None and ts < watermark - LATENESS:
            continue
        watermark = ts if watermark is None else max(watermark, ts)
        records += series.close_until(watermark, seq)
        if is_trade:
            records += add_trade(series, ts, seq, amount)
        else:
            records += add_price(series, ts, seq, price)
    return records


@settings(max_examples=200, deadline=None)
@given(events)
def test_candle_invariants_hold_for_any_event_sequence(items):
    records = run_series(items)
    last: dict[tuple, Candle] = {}
    for c in records:
        assert c.low <= c.open <= c.high and c.low <= c.close <= c.high
        assert c.volume >= 0 and c.trade_count >= 0
        assert c.open_time % TIMEFRAMES[c.timeframe] == 0
        key = (c.timeframe, c.open_time)
        previous = last.get(key)
        if previous is not None:
            assert c.revision == previous.revision + 1
            assert not previous.is_closed, "nothing after the closing record"
            assert c.volume >= previous.volume
        else:
            assert c.revision == 1
        last[key] = c


@settings(max_examples=100, deadline=None)
@given(events)
def test_closed_candles_equal_a_recomputation_from_the_prices(items):
    records = run_series(items)
    prices = []
    watermark = None
    for seq, (is_trade, at, price, _) in enumerate(items):
        ts = T0 + at
        if watermark is not None and ts < watermark - LATENESS:
            continue
        watermark = ts if watermark is None else max(watermark, ts)
        if not is_trade:
            prices.append((ts, seq, price))
    for c in (c for c in records if c.is_closed):
        inside = sorted(
            p for p in prices if c.open_time <= p[0] < c.open_time + TIMEFRAMES[c.timeframe]
        )
        assert (c.open, c.close) == (inside[0][2], inside[-1][2])
        assert (c.high, c.low) == (max(p[2] for p in inside), min(p[2] for p in inside))


def test_engine_candles_follow_the_quotes():
    harness = Harness()
    outputs = []
    for step in range(70):
        outputs += harness.feed(
            [
                tick("a", step * 100 * MS, 100.0 + step % 7 / 100),
                tick("b", step * 100 * MS + 1, 100.0 + step % 5 / 100),
            ]
        )
    quotes = [o for o in outputs if isinstance(o, Quote)]
    closed = [o for o in outputs if isinstance(o, Candle) and o.is_closed]
    assert closed and {c.timeframe for c in closed} == {"1s"}
    for c in closed:
        inside = sorted(
            (q.ts_event, q.seq, q.price)
            for q in quotes
            if c.open_time <= q.ts_event < c.open_time + SECOND
        )
        assert (c.open, c.close) == (inside[0][2], inside[-1][2])
        assert c.high == max(p for _, _, p in inside)
