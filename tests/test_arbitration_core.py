"""Tests of the pure arbitration core: scoring, checks, selection, fail-over, statuses, DLQ."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbitration.engine import checks, scoring
from arbitration.engine.config import Weights
from arbitration.engine.partition import MAX_KEPT_BYTES
from arbitration.engine.statuses import StatusTimeline
from schemas import decode, encode
from schemas.codec import MAX_PAYLOAD_BYTES
from schemas.records import Quote, RawTick, Rejected, Trade
from tests.factories import MS, SECOND, T0, default_config, status, tick
from tests.support_engine import Harness

unit = st.floats(min_value=0, max_value=1)


def quotes(outputs: list) -> list[Quote]:
    return [o for o in outputs if isinstance(o, Quote)]


def rejected(outputs: list) -> list[Rejected]:
    return [o for o in outputs if isinstance(o, Rejected)]


# --- scoring -----------------------------------------------------------------------------


def test_components_at_their_reference_points():
    assert scoring.freshness(0, 2 * SECOND) == 1.0
    assert scoring.freshness(SECOND, 2 * SECOND) == 0.5
    assert scoring.freshness(3 * SECOND, 2 * SECOND) == 0.0
    assert scoring.latency(0, 100 * MS) == 1.0
    assert scoring.latency(100 * MS, 100 * MS) == 0.5
    assert scoring.reliability(0, 0) == 1.0
    assert scoring.reliability(10, 1) == pytest.approx(0.9)
    assert scoring.agreement(100.0, 100.0, 50) == 1.0
    assert scoring.agreement(100.5, 100.0, 50) == pytest.approx(0.5)


def test_score_is_the_weighted_mean():
    parts = scoring.Components(1.0, 0.0, 1.0, 0.0, 1.0, 0.0)
    assert scoring.score(parts, Weights(1, 1, 1, 1, 1, 1)) == pytest.approx(0.5)
    assert scoring.score(parts, Weights(1, 0, 0, 0, 0, 0)) == 1.0
    assert scoring.score(parts, Weights(0, 0, 0, 0, 0, 0)) == 0.0


@settings(max_examples=300)
@given(
    st.lists(unit, min_size=6, max_size=6),
    st.integers(0, 5),
    unit,
    st.lists(st.floats(0, 10), min_size=6, max_size=6),
)
def test_score_never_falls_when_one_component_rises(values, which, bump, weights):
    before = scoring.Components(*values)
    raised = list(values)
    raised[which] = min(1.0, values[which] + bump)
    w = Weights(*weights)
    assert scoring.score(scoring.Components(*raised), w) >= scoring.score(before, w) - 1e-12
    assert 0.0 <= scoring.score(before, w) <= 1.0 + 1e-12


@settings(max_examples=300)
@given(
    st.lists(unit, min_size=1, max_size=6), st.integers(0, 5), unit, unit, unit, st.integers(1, 5)
)
def test_confidence_is_monotone_in_agreement_freshness_and_count(
    agreements, which, bump, fresh, fresh_bump, expected
):
    base = scoring.confidence(agreements, fresh, expected)
    assert 0.0 <= base <= 1.0
    index = which % len(agreements)
    more = list(agreements)
    more[index] = min(1.0, more[index] + bump)
    assert scoring.confidence(more, fresh, expected) >= base
    assert scoring.confidence(agreements, min(1.0, fresh + fresh_bump), expected) >= base
    mean = sum(agreements) / len(agreements)
    assert scoring.confidence([*agreements, mean], fresh, expected) >= base - 1e-4


def test_confidence_examples():
    assert scoring.confidence([1.0, 1.0, 1.0], 1.0, 3) == 1.0
    assert scoring.confidence([1.0], 1.0, 3) == pytest.approx(1 / 3, abs=1e-4)
    assert scoring.confidence([1.0, 1.0, 1.0], 0.0, 3) == 0.5
    assert scoring.confidence([], 1.0, 3) == 0.0


# --- checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_bad_price(price):
    assert checks.bad_price(tick("a", 0, price))[0] == "bad_price"
    assert checks.bad_price(tick("a", 0, 10.0, bid=price))[0] == "bad_price"
    assert checks.bad_price(tick("a", 0, 10.0, bid=9.9, ask=10.1)) is None


def refused(price: float, sample: list[float], reference: float | None = None) -> bool:
    """Whether ``price`` is refused as an outlier among ``sample`` (10 spreads, 5 bps)."""
    refusal = checks.band(sample, 10, 5, reference).refuse(price)
    assert refusal is None or refusal[0] == "outlier"
    return refusal is not None


def test_outlier_is_judged_against_every_fresh_price_its_own_included():
    venues = [100.0, 100.1, 99.9]
    assert not refused(100.2, [*venues, 100.2])
    assert refused(101.0, [*venues, 101.0])
    # One wild provider cannot drag the consensus: the median stays near 100.
    assert not refused(100.05, [100.0, 100.1, 1000.0, 100.05])
    assert refused(1000.0, [100.0, 100.1, 1000.0])
    # A provider alone has nothing to disagree with.
    assert not refused(1000.0, [1000.0])


def test_two_equal_halves_go_to_the_half_the_quote_is_at():
    assert refused(130.0, [100.0, 130.0], reference=100.0)
    assert not refused(100.0, [100.0, 130.0], reference=100.0)
    assert refused(100.0, [100.0, 100.0, 130.0, 130.0], reference=129.0)
    # Without a quote yet there is no side to prefer, and both halves are taken.
    assert not refused(130.0, [100.0, 130.0])


@settings(max_examples=300)
@given(
    st.lists(st.floats(90, 110), min_size=2, max_size=9),
    st.floats(0.0, 0.5),
    st.floats(-0.4, 0.4).filter(lambda x: abs(x) > 0.02),
    st.floats(90, 110) | st.none(),
)
def test_a_minority_beyond_the_band_is_always_refused(majority, noise_bps, offset, reference):
    """A strict majority within ``w`` of each other makes any price farther than
    ``mads * max(w, floor)`` from them an outlier, however the minority is spread."""
    center = majority[0]
    group = [center * (1 + noise_bps / 10_000 * (i % 3 - 1)) for i in range(len(majority))]
    minority = [center * (1 + offset + i / 1000) for i in range(len(group) - 1)]
    sample = group + minority
    assert all(refused(price, sample, reference) for price in minority)
    assert not any(refused(price, sample, reference) for price in group)


# --- every DLQ reason through the engine ---------------------------------------------------


def three_venues(at: int = 0) -> list[RawTick]:
    return [tick("a", at, 100.0), tick("b", at + 1, 100.05), tick("c", at + 2, 99.95)]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (tick("d", 10 * MS, 0.0), "bad_price"),
        (tick("d", 10 * MS, -5.0), "bad_price"),
        (tick("d", 10 * MS, math.nan), "bad_price"),
        (tick("d", 10 * MS, math.inf), "bad_price"),
        (tick("d", 10 * MS, 100.0, bid=100.2, ask=100.1), "crossed_book"),
        (tick("d", 10 * MS, 100.0, kind="TRADE", size=-1.0), "bad_size"),
        (tick("d", 10 * MS, 100.0, latency=-2 * SECOND), "future"),
        (tick("a", 0, 100.0), "duplicate"),
        (tick("d", 10 * MS, 120.0), "outlier"),
        (tick("d", -4 * SECOND, 100.0), "late"),
        (b"\x00\x00\x00\x00\x01garbage", "undecodable"),
        (b"", "undecodable"),
        (None, "undecodable"),
    ],
)
def test_every_reason_goes_to_the_dlq_with_the_original_bytes(bad, reason):
    harness = Harness()
    harness.feed(three_venues())
    outputs = harness.send(bad)
    assert len(outputs) == 1
    record = outputs[0]
    assert isinstance(record, Rejected)
    assert record.reason == reason
    assert record.detail
    assert (record.source_topic, record.source_partition, record.source_offset) == ("raw", 0, 3)
    assert harness.engine.rejections[reason] == 1
    if bad is None or isinstance(bad, bytes):
        assert record.original == (bad or b"") and record.symbol is None
    else:
        assert record.symbol == bad.symbol and record.provider == bad.provider


large = st.builds(
    lambda size, byte: bytes([byte]) * size,
    st.integers(MAX_KEPT_BYTES - 8, MAX_PAYLOAD_BYTES + 8),
    st.integers(0, 255),
)


@settings(max_examples=300, deadline=None)
@given(st.none() | st.binary(max_size=300) | large)
def test_any_value_a_producer_writes_gives_outputs_that_can_be_written(value):
    """Nothing stops the engine, and a rejection always fits in a Kafka record: it keeps at
    most MAX_KEPT_BYTES of the original, and says so."""
    harness = Harness()
    harness.feed(three_venues())
    for out in harness.send(value):
        assert type(decode(encode(out))) is type(out)
        if isinstance(out, Rejected):
            assert out.original == (value or b"")[:MAX_KEPT_BYTES]
            assert ("cut to its first" in out.detail) == (len(value or b"") > MAX_KEPT_BYTES)
    assert Quote in [type(out) for out in harness.send(tick("a", 100 * MS, 100.2))]


def test_duplicate_trade_id_with_a_new_seq_is_rejected_and_trades_are_deduplicated():
    harness = Harness()
    harness.feed(three_venues())
    first = harness.send(tick("a", 5 * MS, 100.0, kind="TRADE", seq=50, trade_id="t1"))
    again = harness.send(tick("a", 6 * MS, 100.0, kind="TRADE", seq=51, trade_id="t1"))
    trades = [o for o in first if isinstance(o, Trade)]
    assert [t.trade_id for t in trades] == ["t1"] and trades[0].amount == 1.0
    assert [r.reason for r in rejected(again)] == ["duplicate"]


def test_a_poison_record_does_not_stop_the_engine():
    harness = Harness()
    harness.send(b"\xff" * 30)
    assert quotes(harness.send(tick("a", 0, 100.0)))[0].price == 100.0


def test_rejected_ticks_lower_the_providers_reliability():
    harness = Harness()
    harness.feed(three_venues())
    harness.send(tick("c", 10 * MS, 150.0))
    book = harness.engine.books["AAPL"]
    assert (book.providers["c"].seen, book.providers["c"].rejected) == (2, 1)
    assert scoring.reliability(2, 1) == 0.5


def test_a_future_tick_does_not_move_event_time():
    harness = Harness()
    harness.feed(three_venues())
    harness.send(tick("a", 60 * SECOND, 100.0, latency=-60 * SECOND))
    assert harness.engine.books["AAPL"].watermark == T0 + 2
    assert quotes(harness.send(tick("b", 20 * MS, 100.0)))


# --- selection and fail-over ---------------------------------------------------------------


def test_best_scored_provider_drives_and_quote_names_it():
    harness = Harness()
    out = harness.feed(
        [
            tick("slow", 0, 100.0, latency=300 * MS),
            tick("fast", 1, 100.01, latency=5 * MS, bid=100.0, ask=100.02),
        ]
    )
    last = quotes(out)[-1]
    assert last.provider == "fast" and last.price == 100.01
    assert (last.bid, last.ask) == (100.0, 100.02)
    assert last.providers == ["fast", "slow"]


def test_fail_over_order_when_the_driver_stalls():
    """a > b > c by latency; a stalls, then b: each hand-over goes to the next best."""
    harness = Harness(default_config(switch_margin=0.0))
    latencies = {"a": 5 * MS, "b": 50 * MS, "c": 200 * MS}
    drivers = []
    for step in range(60):
        at = step * 100 * MS
        alive = [
            p
            for p in "abc"
            if not (p == "a" and at >= 2 * SECOND) and not (p == "b" and at >= 4 * SECOND)
        ]
        for p in alive:
            for q in quotes(harness.send(tick(p, at, 100.0, latency=latencies[p]))):
                if not drivers or drivers[-1][1] != q.provider:
                    drivers.append((at, q.provider))
    assert [p for _, p in drivers] == ["a", "b", "c"]
    # Hand-over within one tick interval (100 ms) once the freshness window (2 s) passed.
    assert drivers[1][0] <= 2 * SECOND + 2 * SECOND + 100 * MS
    assert drivers[2][0] <= 4 * SECOND + 2 * SECOND + 100 * MS


def test_a_down_status_hands_over_after_the_status_delay():
    config = default_config()
    delay = config.effective_status_delay_us
    harness = Harness(config, [status("a", 1 * SECOND, "DOWN")])
    drivers = []
    for step in range(50):
        at = step * 100 * MS
        for p, latency in (("a", 5 * MS), ("b", 50 * MS)):
            for q in quotes(harness.send(tick(p, at, 100.0, latency=latency))):
                drivers.append((at, q.provider))
    switch = next(at for at, p in drivers if p == "b")
    assert 1 * SECOND + delay < switch <= 1 * SECOND + delay + 100 * MS
    assert all(p == "b" for at, p in drivers if at >= switch)
    assert harness.engine.health["a"].down


def test_a_book_feed_failure_leaves_the_quote_scores_unchanged():
    failures = [status("a", at * SECOND, "DEGRADED", error_kind="book_gap") for at in range(4)]
    book_failures = [dataclasses.replace(failure, feed="books") for failure in failures]
    runs = []
    for statuses in ([], book_failures, failures):
        harness = Harness(default_config(), statuses)
        made = []
        for step in range(50):
            for p, latency in (("a", 5 * MS), ("b", 50 * MS)):
                at = step * 100 * MS
                made += quotes(harness.send(tick(p, at, 100.0 + step / 100, latency=latency)))
        runs.append([(q.provider, q.scores) for q in made])
    assert runs[1] == runs[0], "a book feed status changed the quotes"
    assert runs[2] != runs[0], "a status of the ticks feed changes them"


def test_quotes_carry_the_score_of_each_fresh_provider_that_is_not_down():
    harness = Harness(default_config(), [status("a", 1 * SECOND, "DOWN")])
    made = []
    for step in range(50):
        for p, latency in (("a", 5 * MS), ("b", 50 * MS)):
            made += quotes(
                harness.send(tick(p, step * 100 * MS, 100.0 + step / 100, latency=latency))
            )
    both = [q for q in made if q.providers == ["a", "b"]]
    assert set(both[0].scores) == {"a", "b"} and both[0].scores["a"] > both[0].scores["b"]
    assert set(both[-1].scores) == {"b"}, "a still ticks, but is DOWN"
    assert all(0 <= v <= 1 and round(v, 4) == v for q in made for v in q.scores.values())


def test_a_disagreeing_driver_loses_the_role():
    harness = Harness()
    for step in range(10):
        harness.feed(
            [
                tick("a", step * 100 * MS, 100.0, latency=5 * MS),
                tick("b", step * 100 * MS + 1, 100.0, latency=30 * MS),
                tick("c", step * 100 * MS + 2, 100.0, latency=30 * MS),
            ]
        )
    assert harness.engine.books["AAPL"].driver == "a"
    # a drifts 30 bps away: not an outlier, but far enough to lose the role.
    out = harness.feed(
        [tick("a", SECOND, 100.3, latency=5 * MS), tick("b", SECOND + 1, 100.0, latency=30 * MS)]
    )
    assert quotes(out)[0].provider in {"b", "c"}
    assert all(q.provider != "a" for q in quotes(out))


def test_the_driver_does_not_flap_between_equal_providers():
    harness = Harness()
    out = []
    for step in range(20):
        out += harness.feed(
            [tick("a", step * 100 * MS, 100.0), tick("b", step * 100 * MS + 1, 100.0)]
        )
    assert {q.provider for q in quotes(out)} == {"a"}


def test_change_against_the_drivers_reference_price():
    harness = Harness()
    quote = quotes(harness.send(tick("a", 0, 105.0, ref=100.0)))[0]
    assert quote.change == pytest.approx(5.0) and quote.change_percent == pytest.approx(5.0)
    assert quote.reference_price == 100.0
    assert quotes(Harness().send(tick("a", 0, 105.0)))[0].change is None


def test_a_tick_older_than_its_providers_last_changes_no_quote():
    harness = Harness()
    harness.feed([tick("a", 100 * MS, 100.0)])
    assert harness.send(tick("a", 50 * MS, 101.0, seq=7)) == []
    assert harness.engine.books["AAPL"].providers["a"].tick.price == 100.0


# --- statuses ------------------------------------------------------------------------------


def test_timeline_between_is_ordered_and_half_open():
    timeline = StatusTimeline()
    for s in [status("b", 20, "UP"), status("a", 10, "DOWN"), status("a", 20, "UP")]:
        timeline.add(s)
    assert [(s.provider, s.ts_event - T0) for s in timeline.between(None, T0 + 20)] == [
        ("a", 10),
        ("a", 20),
        ("b", 20),
    ]
    assert [s.ts_event - T0 for s in timeline.between(T0 + 10, T0 + 20)] == [20, 20]
    assert timeline.between(T0 + 20, T0 + 30) == []


@settings(max_examples=50, deadline=None)
@given(
    st.permutations(
        [
            status(p, t * 300 * MS, s)
            for p, t, s in [
                ("a", 1, "DOWN"),
                ("b", 2, "UP"),
                ("a", 5, "UP"),
                ("c", 7, "DEGRADED"),
                ("b", 9, "DOWN"),
            ]
        ]
    )
)
def test_status_arrival_order_does_not_change_outputs(order):
    """Statuses take effect by event time, so the order they were read in does not matter."""
    ticks = [
        tick(p, step * 100 * MS + i, 100.0 + i / 100, latency=(i + 1) * 10 * MS)
        for step in range(60)
        for i, p in enumerate("abc")
    ]
    reference = Harness(statuses=sorted(order, key=lambda s: s.ts_event)).feed(ticks)
    assert Harness(statuses=list(order)).feed(ticks) == reference


# --- properties of whole runs ----------------------------------------------------------------

PROVIDERS = ["p1", "p2", "p3", "p4"]
ticks_strategy = st.builds(
    lambda provider, symbol, at, latency, price, kind: tick(
        provider, at, price, latency=latency, symbol=symbol, kind=kind
    ),
    st.sampled_from(PROVIDERS),
    st.sampled_from(["AAPL", "BTC/USDT"]),
    st.integers(0, 10 * SECOND),
    st.integers(-2 * SECOND, 500 * MS),
    st.sampled_from([100.0, 100.02, 99.97, 100.1, 0.0, 130.0, math.nan]),
    st.sampled_from(["QUOTE", "QUOTE", "TRADE"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(ticks_strategy, max_size=80))
def test_any_tick_sequence_gives_consistent_deterministic_outputs(ticks):
    outputs = Harness().feed(ticks)
    assert Harness().feed(ticks) == outputs
    for quote in quotes(outputs):
        assert 0.0 <= quote.confidence <= 1.0
        assert quote.provider in quote.providers == sorted(set(quote.providers))
        assert math.isfinite(quote.price) and quote.price > 0
    for record in rejected(outputs):
        assert record.reason in {
            "bad_price",
            "future",
            "duplicate",
            "outlier",
            "late",
            "bad_size",
            "crossed_book",
        }
    accepted = {(q.symbol, q.ts_event, q.price) for q in quotes(outputs)}
    refused = {(r.symbol, r.ts_event) for r in rejected(outputs)}
    assert all(
        t.price > 0 and math.isfinite(t.price)
        for t in ticks
        if (t.symbol, t.ts_event, t.price) in accepted and (t.symbol, t.ts_event) not in refused
    )


# --- market stories: the quote follows the market, a minority never drives ----------------


def rounds(
    harness: Harness, prices: dict[str, float], start: int, count: int, step: int = 100 * MS
) -> list:
    """``count`` rounds of ticks, one per venue per ``step``, at the given prices."""
    out = []
    for n in range(count):
        at = start + n * step
        for i, (venue, price) in enumerate(prices.items()):
            out += harness.send(tick(venue, at + i, price, seq=at + i))
    return out


def test_a_gap_every_venue_makes_moves_the_quote_within_a_round():
    harness = Harness()
    before = rounds(harness, {"a": 100.0, "b": 100.0, "c": 100.0}, 0, 10)
    assert quotes(before)[-1].price == 100.0
    after = rounds(harness, {"a": 108.0, "b": 108.0, "c": 108.0}, SECOND, 3)
    # The first venue to move is refused (two still say 100); the second makes a majority.
    assert [r.provider for r in rejected(after)] == ["a"]
    assert quotes(after)[0].price == 108.0 and quotes(after)[0].ts_event == T0 + SECOND + 1
    assert all(q.price == 108.0 for q in quotes(after))


def test_a_lone_venue_far_from_the_others_never_drives():
    harness = Harness()
    out = rounds(harness, {"b": 100.0, "c": 100.0, "a": 130.0}, 0, 50)
    assert quotes(out) and all(q.price == 100.0 for q in quotes(out))
    assert {r.provider for r in rejected(out)} == {"a"} and len(rejected(out)) == 50


def test_the_first_venue_of_a_symbol_drives_until_a_majority_says_otherwise():
    harness = Harness()
    out = rounds(harness, {"a": 130.0, "b": 100.0, "c": 100.0}, 0, 20)
    # a alone makes the first quote; b ties with it and is refused; c makes a majority.
    assert [q.price for q in quotes(out)][:2] == [130.0, 100.0]
    assert all(q.price == 100.0 for q in quotes(out)[1:])
    assert all(q.confidence < 0.7 for q in quotes(out)[1:]), "a disagreeing venue costs"


def test_after_a_restart_on_old_state_the_new_prices_are_taken():
    """The state of a run that ended minutes ago holds prices 2% away from the new ones."""
    harness = Harness()
    rounds(harness, {"a": 100.0, "b": 100.0, "c": 100.0}, 0, 10)
    later = 5 * 60 * SECOND
    out = rounds(harness, {"a": 98.0, "b": 98.0, "c": 98.0}, later, 3)
    assert rejected(out) == []
    assert quotes(out)[0].price == 98.0 and quotes(out)[0].ts_event == T0 + later


def test_a_venue_left_alone_is_taken_once_the_others_are_stale():
    harness = Harness()
    rounds(harness, {"a": 100.0, "b": 100.0, "c": 100.0}, 0, 5)
    out = rounds(harness, {"a": 103.0}, SECOND, 40)
    first = quotes(out)[0]
    assert first.price == 103.0
    # b and c last ticked at 0.4 s: stale 2 s later, and a's next tick is taken.
    assert first.ts_event - T0 <= 400 * MS + 2 * SECOND + 100 * MS


# --- eviction ----------------------------------------------------------------------------


def test_a_symbol_is_forgotten_once_the_partition_passes_it_by_the_span():
    """Eviction follows the log alone: the partition's event time more than the span past a
    symbol's last tick forgets it, with its open candles closed; a tick of it older than
    the forgotten horizon is late, a current one starts it afresh."""
    harness = Harness()
    span = harness.engine.config.effective_evict_us
    assert span >= 2 * 86_400 * SECOND  # twice (one day + lateness) at least
    harness.send(tick("alpha", 0, 100.0, symbol="MSFT"))
    harness.send(tick("alpha", span, 10.0))
    assert "MSFT" in harness.engine.books  # exactly the span behind: kept
    closing = harness.send(tick("alpha", span + 2 * SECOND, 10.0))
    assert "MSFT" not in harness.engine.books and "MSFT" not in harness.engine.candles
    finals = [c for c in closing if getattr(c, "symbol", None) == "MSFT"]
    assert {c.timeframe for c in finals} == {"1s", "1m", "5m", "15m", "1h", "1d"}
    assert all(c.is_closed and c.open == 100.0 for c in finals)
    straggler = harness.send(tick("alpha", SECOND, 101.0, symbol="MSFT"))
    assert [r.reason for r in rejected(straggler)] == ["late"]
    assert "MSFT" not in harness.engine.books
    again = harness.send(tick("alpha", span + 3 * SECOND, 102.0, symbol="MSFT"))
    assert [q.price for q in quotes(again)] == [102.0]


@given(st.integers(1, 40), st.integers(0, 5))
def test_the_books_held_are_those_ticked_within_the_span(symbols, late_seconds):
    """However many symbols came and went, the engine holds only those whose last tick is
    within the span of the partition's event time."""
    harness = Harness()
    span = harness.engine.config.effective_evict_us
    for n in range(symbols):
        harness.send(tick("alpha", n * SECOND, 100.0, symbol=f"S{n}"))
    now = span + late_seconds * SECOND + SECOND
    harness.send(tick("alpha", now, 100.0))
    expected = {f"S{n}" for n in range(symbols) if now - n * SECOND <= span} | {"AAPL"}
    assert set(harness.engine.books) == expected == set(harness.engine.candles)
