"""Tests of the synthetic market (ingest/synthetic.py), all in simulated time."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from ingest.synthetic import MICROS, SyntheticMarket, starting_price
from ingest.venues import DEFAULT_VENUES, Venue, with_faults
from runtime.settings import DEFAULT_CRYPTO, DEFAULT_EQUITIES
from tests.factories import T0

STEP_US = 100_000
UNIVERSE = DEFAULT_EQUITIES + DEFAULT_CRYPTO


def steady(name, **changes):
    """A venue that never goes down."""
    fields = dict(
        noise_bps=1.0,
        latency_ms=20,
        spread_bps=4,
        trade_probability=0.2,
        outages_per_hour=0,
        outage_seconds=0,
    )
    fields.update(changes)
    return Venue(name, **fields)


def run(market, seconds, step_us=STEP_US, start=T0):
    """Advance ``market`` over ``seconds`` of simulated time: (now, ticks, statuses) per step."""
    steps = []
    for i in range(int(seconds * MICROS / step_us)):
        now = start + i * step_us
        ticks, statuses = market.advance(now)
        steps.append((now, ticks, statuses))
    return steps


def all_ticks(steps):
    return [tick for _, ticks, _ in steps for tick in ticks]


def all_statuses(steps):
    return [status for _, _, statuses in steps for status in statuses]


@pytest.fixture(scope="module")
def default_minute():
    """One simulated minute of the default universe on the default venues."""
    market = SyntheticMarket(UNIVERSE, seed=7, tick_hz=10)
    return run(market, 60)


def test_same_seed_same_times_same_output():
    a = run(SyntheticMarket(UNIVERSE, seed=11, tick_hz=10), 10)
    b = run(SyntheticMarket(UNIVERSE, seed=11, tick_hz=10), 10)
    assert all_ticks(a)
    assert a == b


def test_different_seeds_differ():
    a = all_ticks(run(SyntheticMarket(["AAPL"], seed=1, tick_hz=10), 5))
    b = all_ticks(run(SyntheticMarket(["AAPL"], seed=2, tick_hz=10), 5))
    assert [t.price for t in a] != [t.price for t in b]


def test_at_least_three_default_venues_with_distinct_names():
    names = [venue.name for venue in DEFAULT_VENUES]
    assert len(names) >= 3
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("tick_hz", [1, 3, 10, 25])
def test_tick_rate_per_symbol_per_venue(tick_hz):
    """With no outages, a minute in 100 ms steps gives tick_hz * 60 quotes per symbol and venue."""
    venues = [steady("v:one"), steady("v:two", latency_ms=80)]
    symbols = ["AAPL", "BTC/USDT"]
    market = SyntheticMarket(symbols, seed=3, tick_hz=tick_hz, venues=venues)
    counts = Counter(
        (t.provider, t.symbol) for t in all_ticks(run(market, 60)) if t.kind == "QUOTE"
    )
    assert set(counts) == {(v.name, s) for v in venues for s in symbols}
    expected = tick_hz * 60
    for count in counts.values():
        assert abs(count - expected) <= max(2, expected * 0.01), counts


def test_tick_rate_does_not_depend_on_step_size():
    venues = [steady("v:one")]
    coarse = SyntheticMarket(["AAPL"], seed=3, tick_hz=10, venues=venues)
    fine = SyntheticMarket(["AAPL"], seed=3, tick_hz=10, venues=venues)
    n_coarse = sum(t.kind == "QUOTE" for t in all_ticks(run(coarse, 30, step_us=1_000_000)))
    n_fine = sum(t.kind == "QUOTE" for t in all_ticks(run(fine, 30, step_us=10_000)))
    assert abs(n_coarse - 300) <= 10
    assert abs(n_fine - 300) <= 10


def test_quote_ticks_are_sane(default_minute):
    quotes = [t for t in all_ticks(default_minute) if t.kind == "QUOTE"]
    assert len(quotes) > 1000
    venues = {venue.name for venue in DEFAULT_VENUES}
    for tick in quotes:
        assert tick.symbol in UNIVERSE
        assert tick.provider in venues
        assert tick.price > 0
        assert tick.ts_event <= tick.ts_ingest
        if tick.bid is not None and tick.ask is not None:
            assert 0 < tick.bid < tick.ask, tick
        assert tick.reference_price == starting_price(tick.symbol)
        assert tick.volume is not None and tick.volume >= 0
        assert tick.trade_id is None and tick.side is None


def test_every_symbol_is_quoted_by_every_venue(default_minute):
    seen = {(t.provider, t.symbol) for t in all_ticks(default_minute) if t.kind == "QUOTE"}
    assert seen == {(v.name, s) for v in DEFAULT_VENUES for s in UNIVERSE}


def test_prices_stay_near_their_start_over_a_minute(default_minute):
    for tick in all_ticks(default_minute):
        assert 0.8 < tick.price / starting_price(tick.symbol) < 1.25, tick


def test_low_priced_symbol_quotes_have_bid_below_ask():
    assert starting_price("ZZZZZA") < 50
    market = SyntheticMarket(["ZZZZZA"], seed=7, tick_hz=10)
    locked = [t for t in all_ticks(run(market, 10)) if t.kind == "QUOTE" and not t.bid < t.ask]
    assert locked == []


def test_trade_ticks(default_minute):
    trades = [t for t in all_ticks(default_minute) if t.kind == "TRADE"]
    assert trades
    ids = set()
    for tick in trades:
        assert tick.trade_id
        assert tick.trade_size is not None and tick.trade_size > 0
        assert tick.side in ("buy", "sell")
        assert tick.price > 0
        assert tick.ts_event <= tick.ts_ingest
        ids.add((tick.provider, tick.trade_id))
    assert len(ids) == len(trades), "trade ids repeat within a venue"
    assert {t.side for t in trades} == {"buy", "sell"}


def test_only_quote_and_trade_kinds(default_minute):
    assert {t.kind for t in all_ticks(default_minute)} == {"QUOTE", "TRADE"}


def test_seq_strictly_increases_per_provider(default_minute):
    last = {}
    for tick in all_ticks(default_minute):
        assert tick.seq > last.get(tick.provider, 0), tick
        last[tick.provider] = tick.seq


def test_steady_venue_reports_up_every_five_seconds():
    market = SyntheticMarket(["AAPL"], seed=5, tick_hz=10, venues=[steady("v:one")])
    statuses = all_statuses(run(market, 60))
    assert {s.state for s in statuses} == {"UP"}
    assert 12 <= len(statuses) <= 13
    times = [s.ts_event for s in statuses]
    assert all(b - a == 5 * MICROS for a, b in pairwise(times))
    assert all(s.provider == "v:one" and s.latency_ms == 20 for s in statuses)


def test_flaky_venue_goes_down_sends_nothing_and_comes_back():
    flaky = steady("v:flaky", outages_per_hour=7200, outage_seconds=1)
    market = SyntheticMarket(
        ["AAPL", "ETH/USDT"], seed=9, tick_hz=10, venues=[steady("v:solid"), flaky]
    )
    steps = run(market, 60)
    state = {}
    transitions = []
    ticks_while_down = []
    for _, ticks, statuses in steps:
        for status in statuses:
            if state.get(status.provider) != status.state:
                transitions.append((status.provider, status.state))
            state[status.provider] = status.state
            if status.state == "DOWN":
                assert status.error_kind == "outage"
        ticks_while_down += [t for t in ticks if state.get(t.provider) == "DOWN"]
    assert ticks_while_down == []
    flaky_states = [s for p, s in transitions if p == "v:flaky"]
    assert "DOWN" in flaky_states
    first_down = flaky_states.index("DOWN")
    assert "UP" in flaky_states[first_down:], "the flaky venue never came back"
    assert all(p != "v:solid" or s == "UP" for p, s in transitions)
    flaky_ticks = [t for t in all_ticks(steps) if t.provider == "v:flaky"]
    solid_ticks = [t for t in all_ticks(steps) if t.provider == "v:solid"]
    assert 0 < len(flaky_ticks) < len(solid_ticks)


def test_add_symbol_starts_simulating_it():
    market = SyntheticMarket(["AAPL"], seed=4, tick_hz=10, venues=[steady("v:one")])
    before = all_ticks(run(market, 2))
    assert {t.symbol for t in before} == {"AAPL"}
    aapl = market.prices["AAPL"]
    market.add_symbol("AAPL")  # already there: no reset
    assert market.prices["AAPL"] == aapl
    market.add_symbol("MSFT")
    after = all_ticks(run(market, 2, start=T0 + 2 * MICROS))
    assert {t.symbol for t in after} == {"AAPL", "MSFT"}
    msft = [t for t in after if t.symbol == "MSFT" and t.kind == "QUOTE"]
    assert len(msft) >= 15
    assert msft[0].reference_price == starting_price("MSFT")


def test_starting_price_is_stable_for_unknown_symbols():
    assert starting_price("AAPL") == 190.0
    assert starting_price("NEWCO") == starting_price("NEWCO")
    assert 10 <= starting_price("NEWCO") < 500


# --- injected faults -----------------------------------------------------------------------


def faulty(*specs):
    return with_faults([steady("v:one"), steady("v:two")], specs)


def test_unknown_fault_or_venue_names_the_setting():
    with pytest.raises(ValueError, match=r"FIML_SYNTHETIC_FAULTS.*nope"):
        faulty("v:one=nope")
    with pytest.raises(ValueError, match=r"FIML_SYNTHETIC_FAULTS.*v:zzz"):
        faulty("v:zzz=down")


def test_down_venue_is_down_four_seconds_in_every_twelve():
    market = SyntheticMarket(["AAPL"], seed=3, tick_hz=10, venues=faulty("v:one=down"))
    steps = run(market, 36)
    silent = {
        now // MICROS - T0 // MICROS
        for now, ticks, _ in steps
        if not any(t.provider == "v:one" for t in ticks)
    }
    assert silent == {8, 9, 10, 11, 20, 21, 22, 23, 32, 33, 34, 35}
    assert "DOWN" in {s.state for s in all_statuses(steps) if s.provider == "v:one"}


def test_lagging_venue_reports_event_times_late():
    market = SyntheticMarket(["AAPL"], seed=3, tick_hz=10, venues=faulty("v:two=lag"))
    ticks = all_ticks(run(market, 5))
    lag = [t.ts_ingest - t.ts_event for t in ticks if t.provider == "v:two"]
    assert min(lag) >= 1_500_000
    assert max(t.ts_ingest - t.ts_event for t in ticks if t.provider == "v:one") < 1_500_000


def test_outliers_and_duplicates_on_one_venue():
    market = SyntheticMarket(
        ["AAPL"], seed=3, tick_hz=10, venues=faulty("v:two=outliers+duplicates")
    )
    ticks = all_ticks(run(market, 60))
    good = [t.price for t in ticks if t.provider == "v:one"]
    median = sorted(good)[len(good) // 2]
    off = [t for t in ticks if abs(t.price / median - 1) > 0.03]
    assert off and {t.provider for t in off} == {"v:two"}
    seqs = Counter((t.provider, t.seq) for t in ticks)
    repeated = {key for key, n in seqs.items() if n > 1}
    assert repeated and {provider for provider, _ in repeated} == {"v:two"}


def test_a_resumed_market_continues_prices_and_never_repeats_a_seq_or_trade_id():
    first = SyntheticMarket(["AAPL", "ETH/USDT"], seed=5, tick_hz=10, trend_bps=50)
    before = all_ticks(run(first, 20))
    last = {t.symbol: t for t in before if t.kind == "QUOTE"}
    resumed = SyntheticMarket(["AAPL", "ETH/USDT", "SOL/USDT"], seed=5, tick_hz=10)
    resumed.resume(last.values(), first_seq=max(t.seq for t in before) + 1)
    after = all_ticks(run(resumed, 2, start=T0 + 30 * MICROS))
    for symbol, tick in last.items():
        assert tick.price > starting_price(symbol) * 1.05, "the trend moved it"
        first_again = next(t for t in after if t.symbol == symbol and t.kind == "QUOTE")
        assert abs(first_again.price / tick.price - 1) < 0.002
        assert first_again.reference_price == tick.reference_price
    assert next(t for t in after if t.symbol == "SOL/USDT").price == pytest.approx(
        starting_price("SOL/USDT"), rel=0.002
    ), "a symbol without a last tick starts afresh"
    assert not {(t.provider, t.seq) for t in before} & {(t.provider, t.seq) for t in after}
    assert not {t.trade_id for t in before if t.trade_id} & {
        t.trade_id for t in after if t.trade_id
    }


def test_a_trend_moves_every_walk_the_same_way():
    market = SyntheticMarket(UNIVERSE, seed=3, tick_hz=10, trend_bps=-20)
    ticks = all_ticks(run(market, 30))
    for symbol in UNIVERSE:
        final = [t.price for t in ticks if t.symbol == symbol][-1]
        assert final < starting_price(symbol) * (1 - 0.03), symbol
