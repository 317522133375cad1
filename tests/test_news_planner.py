"""The news polling planner (ingest/news/planner.py) and each provider's feeds and tickers."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from ingest.news.keyed_pollers import AlphaVantageNewsPoller, FmpNewsPoller
from ingest.news.planner import Budget, Target, plan, polled_symbols, rotation, symbol_map
from ingest.news.tickers import news_targets

ALPHAVANTAGE_BUDGET = AlphaVantageNewsPoller.budget_default
FMP_BUDGET = FmpNewsPoller.budget_default
DAY_US = 86_400_000_000
T0 = 1_789_646_400_000_000  # 2026-09-17T12:00:00Z
MIDNIGHT = T0 - DAY_US // 2


def test_alpha_vantage_spends_25_requests_a_day_on_symbols_with_demand() -> None:
    assert ALPHAVANTAGE_BUDGET.interval_s == 3456.0
    configured, wanted = ["MSFT", "GOOGL"], ["AAPL", "BTC/USDT", "^GSPC"]
    targets = news_targets("alphavantage", polled_symbols(ALPHAVANTAGE_BUDGET, configured, wanted))
    assert [t.ticker for t in targets] == ["AAPL", "CRYPTO:BTC"]  # no index, no MSFT
    step = 60_000_000  # every minute of one UTC day: slots count from the epoch, 25 a day
    plans = [plan(ALPHAVANTAGE_BUDGET, targets, MIDNIGHT + n * step) for n in range(DAY_US // step)]
    slots = {p.slot: p.request for p in plans}
    assert len(slots) == 25
    tickers = [request.tickers for request in slots.values() if request is not None]
    assert sorted(set(tickers)) == [("AAPL",), ("CRYPTO:BTC",)]
    assert abs(tickers.count(("AAPL",)) - tickers.count(("CRYPTO:BTC",))) <= 1
    assert all(a != b for a, b in itertools.pairwise(tickers))  # alternating


def test_nothing_is_polled_without_demand_on_a_demand_only_budget() -> None:
    symbols = polled_symbols(ALPHAVANTAGE_BUDGET, ["AAPL"], [])
    assert plan(ALPHAVANTAGE_BUDGET, news_targets("alphavantage", symbols), T0).request is None
    assert polled_symbols(FMP_BUDGET, ["AAPL"], []) == {"AAPL"}


def test_fmp_batches_tickers_per_feed() -> None:
    targets = news_targets(
        "fmp",
        [
            "AAPL",
            "MSFT",
            "NVDA",
            "TSLA",
            "AMZN",
            "META",
            "EUR/USD",
            "BTC/USDT",
            "ETH/USDT",
            "^GSPC",
        ],
    )
    requests = rotation(targets, FMP_BUDGET.max_batch)
    assert [(r.feed, r.tickers) for r in requests] == [
        ("crypto", ("BTCUSD", "ETHUSD")),
        ("forex", ("EURUSD",)),
        ("press-releases", ("AAPL", "AMZN", "META", "MSFT", "NVDA")),
        ("press-releases", ("TSLA",)),
        ("stock", ("AAPL", "AMZN", "META", "MSFT", "NVDA")),
        ("stock", ("TSLA",)),
    ]


def test_provider_tickers_and_the_map_back_to_symbols() -> None:
    symbols = ["AAPL", "BTC/USDT", "BTC/USD", "EUR/USD", "GC=F"]
    assert {t.ticker: t.symbols for t in news_targets("yfinance", symbols)} == {
        "AAPL": ("AAPL",),
        "BTC-USD": ("BTC/USD", "BTC/USDT"),
        "EURUSD=X": ("EUR/USD",),
        "GC=F": ("GC=F",),
    }
    assert symbol_map(news_targets("alphavantage", symbols)) == {
        "AAPL": ("AAPL",),
        "CRYPTO:BTC": ("BTC/USD", "BTC/USDT"),
        "FOREX:EUR": ("EUR/USD",),
    }
    assert news_targets("fmp", ["GC=F", "^GSPC"]) == ()


def test_the_next_slot_starts_where_this_one_ends() -> None:
    budget = Budget(interval_s=10.0)
    targets = [Target("news", "AAPL", ("AAPL",))]
    first = plan(budget, targets, T0 + 3_000_000)
    assert first.next_us == T0 + 10_000_000
    assert plan(budget, targets, first.next_us).slot == first.slot + 1


target_sets = st.lists(
    st.builds(
        Target,
        feed=st.sampled_from(["stock", "crypto", "press-releases"]),
        ticker=st.sampled_from(["AAPL", "MSFT", "BTCUSD", "ETHUSD", "NVDA", "TSLA"]),
        symbols=st.just(("X",)),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda t: (t.feed, t.ticker),
)


@given(target_sets, st.integers(1, 4), st.integers(0, 10**17), st.randoms())
def test_one_round_of_slots_asks_for_every_target_once(
    targets: list[Target], batch: int, now_us: int, rng: object
) -> None:
    budget = Budget(interval_s=7.5, max_batch=batch)
    shuffled = list(targets)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    rounds = len(rotation(targets, batch))
    asked = [plan(budget, targets, now_us + n * budget.interval_us).request for n in range(rounds)]
    assert sorted(t for request in asked if request for t in request.targets) == sorted(targets)
    assert plan(budget, shuffled, now_us) == plan(budget, targets, now_us)
    slot_start = plan(budget, targets, now_us).slot * budget.interval_us
    assert plan(budget, targets, slot_start) == plan(budget, targets, now_us)
