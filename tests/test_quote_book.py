"""Tests of the quote arbitration core (arbitration/quote_book.py), ticks built by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbitration.quote_book import QuoteBook, QuoteEngine
from schemas.records import RawTick

MS = 1_000
SECOND = 1_000_000
FRESHNESS = 2 * SECOND
T0 = 1_763_807_400_000_000


def tick(provider, at, price, *, latency=10 * MS, symbol="AAPL", kind="QUOTE", ref=None,
         bid=None, ask=None, volume=None, seq=0):
    """A RawTick of ``provider`` with event time T0 + ``at`` and ingest ``latency`` later."""
    return RawTick(symbol, provider, kind, T0 + at, T0 + at + latency, seq, price, bid=bid,
                   ask=ask, volume=volume, reference_price=ref)


def feed(engine, ticks, first_seq=0):
    return [engine.apply(t, seq) for seq, t in enumerate(ticks, start=first_seq)]


def test_lowest_latency_fresh_provider_drives():
    engine = QuoteEngine(FRESHNESS)
    quotes = feed(engine, [
        tick("slow", 0, 100.0, latency=50 * MS),
        tick("fast", 0, 100.1, latency=5 * MS, bid=100.0, ask=100.2),
        tick("mid", 0, 99.9, latency=20 * MS),
    ])
    assert quotes[0].provider == "slow"
    assert quotes[1].provider == "fast"
    last = quotes[1] if quotes[2] is None else quotes[2]
    assert last.provider == "fast"
    assert last.price == 100.1
    assert (last.bid, last.ask) == (100.0, 100.2)
    assert last.ts_event == T0 and last.ts_ingest == T0 + 5 * MS


def test_latency_tie_goes_to_the_name_that_sorts_first():
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("zeta", 0, 100.0), tick("alpha", 0, 100.0)])
    assert engine.books["AAPL"].last_quote.provider == "alpha"


def test_latency_is_smoothed_not_replaced():
    """One fast tick of a slow provider does not make it the fastest."""
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("a", 0, 100.0, latency=100 * MS), tick("b", 0, 100.0, latency=30 * MS),
                  tick("a", 1 * MS, 100.0, latency=1 * MS)])
    # a: 100 ms + 0.2 * (1 ms - 100 ms) = 80.2 ms, still slower than b.
    assert engine.books["AAPL"].last_quote.provider == "b"


def test_stale_provider_stops_driving_and_the_next_takes_over():
    engine = QuoteEngine(FRESHNESS)
    first = feed(engine, [tick("fast", 0, 100.0, latency=5 * MS),
                          tick("slow", 0, 100.2, latency=50 * MS)])
    assert first[1].provider == "fast" and first[1].providers == ["fast", "slow"]

    # Exactly freshness_us behind the newest tick: still fresh, still driving.
    assert engine.apply(tick("slow", FRESHNESS, 100.2, latency=50 * MS), 2) is None
    assert engine.books["AAPL"].last_quote.provider == "fast"

    # One microsecond more and "fast" is stale: fail-over to "slow".
    failover = engine.apply(tick("slow", FRESHNESS + 1, 100.3, latency=50 * MS), 3)
    assert failover is not None
    assert failover.provider == "slow"
    assert failover.price == 100.3
    assert failover.providers == ["slow"]
    assert failover.seq == 3

    # "fast" comes back with a fresh tick and drives again.
    back = engine.apply(tick("fast", FRESHNESS + 2, 100.25, latency=5 * MS), 4)
    assert back.provider == "fast"
    assert back.providers == ["fast", "slow"]


def test_tick_older_than_the_providers_last_is_ignored():
    engine = QuoteEngine(FRESHNESS)
    assert engine.apply(tick("a", 10 * MS, 100.0), 0).price == 100.0
    assert engine.apply(tick("a", 5 * MS, 90.0), 1) is None
    assert engine.books["AAPL"].providers["a"].tick.price == 100.0
    # Same event time is accepted (a correction at the same instant).
    same_time = engine.apply(tick("a", 10 * MS, 101.0), 2)
    assert same_time is not None and same_time.price == 101.0


def test_old_tick_of_one_provider_does_not_block_another():
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("a", 10 * MS, 100.0, latency=50 * MS)])
    quote = engine.apply(tick("b", 5 * MS, 100.0, latency=1 * MS), 1)
    assert quote is not None and quote.provider == "b"


@pytest.mark.parametrize("price", [0.0, -1.0, -0.0, math.nan, math.inf, -math.inf])
def test_unusable_prices_yield_none_and_change_nothing(price):
    engine = QuoteEngine(FRESHNESS)
    assert engine.apply(tick("bad", 0, price), 0) is None
    quote = engine.apply(tick("good", 0, 100.0), 1)
    assert quote.providers == ["good"]
    assert engine.apply(tick("bad", 1 * MS, price), 2) is None
    assert engine.books["AAPL"].last_quote == quote


def test_trade_ticks_yield_none():
    engine = QuoteEngine(FRESHNESS)
    assert engine.apply(tick("a", 0, 100.0, kind="TRADE"), 0) is None
    assert engine.books["AAPL"].providers == {}
    assert engine.apply(tick("a", 0, 100.0), 1) is not None
    assert engine.apply(tick("a", 1 * MS, 120.0, kind="TRADE"), 2) is None


def test_book_ignores_ticks_of_other_symbols():
    book = QuoteBook("AAPL", FRESHNESS)
    assert book.apply(tick("a", 0, 100.0, symbol="MSFT"), 0) is None
    assert book.providers == {}


def test_engine_keeps_one_book_per_symbol():
    engine = QuoteEngine(FRESHNESS)
    a = engine.apply(tick("p", 0, 100.0, symbol="AAPL"), 0)
    b = engine.apply(tick("q", 0, 65000.0, symbol="BTC/USDT"), 1)
    assert (a.symbol, a.price, a.providers) == ("AAPL", 100.0, ["p"])
    assert (b.symbol, b.price, b.providers) == ("BTC/USDT", 65000.0, ["q"])
    assert set(engine.books) == {"AAPL", "BTC/USDT"}


@pytest.mark.parametrize("seq", [0, 1, 41, 2**40])
def test_quote_seq_is_the_seq_passed_in(seq):
    engine = QuoteEngine(FRESHNESS)
    tick_seq = tick("a", 0, 100.0, seq=999)
    assert engine.apply(tick_seq, seq).seq == seq


def test_change_against_reference_price():
    engine = QuoteEngine(FRESHNESS)
    quote = engine.apply(tick("a", 0, 105.0, ref=100.0, volume=1234.0), 0)
    assert quote.change == pytest.approx(5.0)
    assert quote.change_percent == pytest.approx(5.0)
    assert quote.reference_price == 100.0
    assert quote.volume == 1234.0
    down = engine.apply(tick("a", 1 * MS, 190.0, ref=200.0), 1)
    assert down.change == pytest.approx(-10.0)
    assert down.change_percent == pytest.approx(-5.0)


@pytest.mark.parametrize("ref", [None, 0.0])
def test_no_change_without_a_reference_price(ref):
    quote = QuoteEngine(FRESHNESS).apply(tick("a", 0, 105.0, ref=ref), 0)
    assert quote.change is None and quote.change_percent is None


@pytest.mark.parametrize("ref", [math.nan, math.inf])
def test_unusable_reference_price_gives_no_change(ref):
    quote = QuoteEngine(FRESHNESS).apply(tick("a", 0, 105.0, ref=ref), 0)
    assert quote.change is None and quote.change_percent is None


def test_change_uses_the_driving_ticks_reference():
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("slow", 0, 100.0, ref=50.0, latency=90 * MS),
                  tick("fast", 0, 100.0, ref=80.0, latency=1 * MS)])
    quote = engine.books["AAPL"].last_quote
    assert quote.provider == "fast"
    assert quote.change == pytest.approx(20.0)
    assert quote.change_percent == pytest.approx(25.0)


def test_confidence_is_one_with_three_agreeing_fresh_providers():
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("a", 0, 100.0), tick("b", 0, 100.1), tick("c", 0, 99.9)])
    assert engine.books["AAPL"].last_quote.confidence == 1.0


def test_confidence_drops_with_an_outlier():
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("a", 0, 100.0), tick("b", 0, 100.1), tick("c", 0, 110.0)])
    assert engine.books["AAPL"].last_quote.confidence == pytest.approx(2 / 3, abs=1e-4)


@pytest.mark.parametrize(("count", "expected"), [(1, 1 / 3), (2, 2 / 3), (3, 1.0), (4, 1.0)])
def test_confidence_scales_with_the_number_of_fresh_providers(count, expected):
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick(f"p{i}", 0, 100.0) for i in range(count)])
    assert engine.books["AAPL"].last_quote.confidence == pytest.approx(expected, abs=1e-4)


def test_stale_providers_do_not_count_for_confidence():
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("a", 0, 100.0), tick("b", 0, 100.0), tick("c", 0, 100.0)])
    assert engine.books["AAPL"].last_quote.confidence == 1.0
    quote = engine.apply(tick("a", 3 * SECOND, 100.0), 3)
    assert quote.providers == ["a"]
    assert quote.confidence == pytest.approx(1 / 3, abs=1e-4)


def test_unchanged_quote_returns_none():
    engine = QuoteEngine(FRESHNESS)
    assert engine.apply(tick("a", 0, 100.0, bid=99.9, ask=100.1), 0) is not None
    assert engine.apply(tick("a", 100 * MS, 100.0, bid=99.9, ask=100.1), 1) is None
    changed = engine.apply(tick("a", 200 * MS, 100.0, bid=99.8, ask=100.1), 2)
    assert changed is not None and changed.bid == 99.8


def test_providers_list_is_sorted():
    engine = QuoteEngine(FRESHNESS)
    feed(engine, [tick("zeta", 0, 100.0, latency=1 * MS), tick("alpha", 0, 100.0),
                  tick("mid", 0, 100.0, latency=5 * MS)])
    quote = engine.books["AAPL"].last_quote
    assert quote.providers == ["alpha", "mid", "zeta"]
    assert quote.provider == "zeta"


# --- properties --------------------------------------------------------------------------

PROVIDERS = ["ccxt:binance", "ccxt:kraken", "synthetic:alpha", "yfinance"]
prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
valid_ticks = st.builds(
    lambda provider, symbol, at, latency, price, spread, ref: tick(
        provider, at, price, latency=latency, symbol=symbol, ref=ref,
        bid=None if spread is None else price - spread,
        ask=None if spread is None else price + spread,
    ),
    st.sampled_from(PROVIDERS),
    st.sampled_from(["AAPL", "BTC/USDT"]),
    st.integers(min_value=0, max_value=10 * SECOND),
    st.integers(min_value=0, max_value=500 * MS),
    prices,
    st.none() | st.floats(min_value=0, max_value=0.005),
    st.none() | prices,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_ticks, max_size=60))
def test_quotes_are_consistent_for_any_tick_sequence(ticks):
    engine = QuoteEngine(FRESHNESS)
    for seq, t in enumerate(ticks):
        quote = engine.apply(t, seq)
        if quote is None:
            continue
        assert 0.0 <= quote.confidence <= 1.0
        assert quote.provider in quote.providers
        assert quote.providers == sorted(set(quote.providers))
        assert quote.symbol == t.symbol
        assert quote.seq == seq
        assert quote.price > 0
        book = engine.books[t.symbol]
        assert book.providers[quote.provider].tick.price == quote.price
        assert quote.ts_event >= book.newest_event_us - FRESHNESS


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_ticks, max_size=60))
def test_replay_into_a_fresh_engine_is_identical(ticks):
    first = feed(QuoteEngine(FRESHNESS), ticks, first_seq=100)
    second = feed(QuoteEngine(FRESHNESS), ticks, first_seq=100)
    assert first == second
