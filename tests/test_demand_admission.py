"""Live providers check a demanded symbol before they spend their rate budget on it.

The bound and the verdict times are tested on :class:`Admission` alone; each provider on
recorded payloads through its own client: ccxt parses the recorded Binance markets, Yahoo
answers the chart request from recordings, Alpha Vantage and FMP go through httpx's
MockTransport. A junk symbol costs at most one lookup and is never polled; a real one is.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from ingest.providers.admission import (
    ACCEPTED,
    LOG_LINES_PER_MINUTE,
    Admission,
    refused,
)
from ingest.providers.alphavantage import AlphaVantageProvider
from ingest.providers.ccxt_mapping import market_verdict
from ingest.providers.ccxt_provider import CcxtProvider
from ingest.providers.fmp import FmpProvider
from ingest.providers.registry import build_providers
from ingest.providers.yahoo_provider import YahooProvider
from runtime.exchanges import make_exchange
from runtime.settings import Settings
from schemas import RawTick
from tests.ccxt_http import RecordedSession, Reply, binance_routes, fixture
from tests.support_providers import SEED, Records, run_provider_until
from tests.yahoo_http import CHARTS, RecordedYahooSession

KEY = "TESTKEY123"


def admission(provider: str = "test", per_minute: int | None = 5) -> Admission:
    return Admission(provider, per_minute=per_minute, accepted_s=600.0, refused_s=60.0)


def refusals(provider: str, reason: str) -> float:
    labels = {"provider": provider, "reason": reason}
    return REGISTRY.get_sample_value("fiml_demand_refused_total", labels) or 0.0


def ticked(records: Records) -> Counter[str]:
    return Counter(record.symbol for record in records if isinstance(record, RawTick))


@given(
    per_minute=st.integers(1, 30),
    gaps=st.lists(st.floats(0.0, 30.0, allow_nan=False), min_size=1, max_size=300),
)
def test_a_flood_of_checks_takes_at_most_the_bound(per_minute: int, gaps: list[float]) -> None:
    """However densely lookups are asked for, those granted in any window of T seconds are
    at most ``per_minute * (1 + T / 60)``, and the first minute's are granted."""
    bound = admission(per_minute=per_minute)
    now, granted = 0.0, []
    for gap in gaps:
        now += gap
        if bound.take(now):
            granted.append(now)
    assert len(granted) >= min(len(gaps), per_minute)  # a fresh bound grants its minute
    for i, start in enumerate(granted):
        for j in range(i, len(granted)):
            window = granted[j] - start
            assert j - i + 1 <= per_minute * (1 + window / 60) + 1e-9


def test_verdicts_are_kept_for_their_stated_times() -> None:
    checks = admission()
    checks.record("GOOD", ACCEPTED, 0.0)
    checks.record("JUNK", refused("not_found"), 0.0)
    assert checks.due(["GOOD", "JUNK", "NEW"], 59.0) == ["NEW"]
    assert checks.due(["GOOD", "JUNK"], 60.0) == ["JUNK"]  # a refusal is kept 60 s
    assert checks.due(["GOOD", "JUNK"], 600.0) == ["GOOD", "JUNK"]
    assert checks.admitted("GOOD") and not checks.admitted("JUNK")  # served while rechecked
    checks.forget(["GOOD"], 600.0)
    assert set(checks.verdicts) == {"GOOD"}


def test_a_symbol_whose_check_keeps_failing_goes_after_the_others() -> None:
    checks = admission()
    assert checks.due(["AAA", "BBB", "CCC"], 0.0) == ["AAA", "BBB", "CCC"]
    checks.could_not_tell("AAA", 1.0)
    assert checks.due(["AAA", "BBB", "CCC"], 2.0) == ["BBB", "CCC", "AAA"]
    checks.could_not_tell("BBB", 3.0)
    assert checks.due(["AAA", "BBB", "CCC"], 4.0) == ["CCC", "AAA", "BBB"]
    checks.record("AAA", ACCEPTED, 5.0)  # a verdict at last: no longer a failing one
    checks.forget(["AAA"], 6.0)
    assert checks.failed == {} and checks.due(["AAA", "BBB"], 7.0) == ["BBB"]


def test_a_refusal_is_counted_and_logged_at_most_a_few_lines_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    checks = admission("flooded")
    before = refusals("flooded", "not_found")
    with caplog.at_level(logging.WARNING, "fiml.ingest.admission"):
        for n in range(20):
            checks.record(f"JUNK{n}", refused("not_found"), n / 10)
        checks.record("LATER", refused("not_found"), 61.0)
    assert refusals("flooded", "not_found") == before + 21
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == LOG_LINES_PER_MINUTE + 1
    assert "15 more refused unlogged" in lines[-1]


async def load_binance_markets(exchange_info: str) -> dict:
    exchange = make_exchange("binance", 1.0)
    exchange.session = RecordedSession({"/api/v3/exchangeInfo": Reply(exchange_info)})
    try:
        return dict(await exchange.load_markets())
    finally:
        await exchange.close()


async def test_ccxt_markets_decide_listed_spot_and_active() -> None:
    recorded = fixture("ccxt/binance_exchange_info.json")
    markets = await load_binance_markets(recorded)
    assert market_verdict(markets["BTC/USDT"]) == ACCEPTED
    assert market_verdict(markets.get("JUNK/USDT")) == refused("not_listed")
    assert market_verdict({**markets["BTC/USDT"], "spot": False}) == refused("not_spot")
    # derived from the recording: BTCUSDT in a trading break (status BREAK), parsed by ccxt
    info = json.loads(recorded)
    info["symbols"][0]["status"] = "BREAK"
    halted = (await load_binance_markets(json.dumps(info)))["BTC/USDT"]
    assert halted["active"] is False and market_verdict(halted) == refused("inactive")


def test_every_live_provider_checks_demand_and_only_ccxt_is_unbounded() -> None:
    settings = Settings(
        providers=("ccxt:kraken", "yfinance"), alphavantage_api_key=KEY, fmp_api_key=KEY
    )
    bounds = {
        p.name: p.admission.per_minute
        for p in build_providers(settings)
        if getattr(p, "admission", None) is not None
    }
    assert bounds == {"ccxt:kraken": None, "yfinance": 10, "alphavantage": 10, "fmp": 10}


async def test_ccxt_serves_a_listed_pair_and_never_asks_for_a_junk_one() -> None:
    exchange = make_exchange("binance", 2.0)
    exchange.session = session = RecordedSession(binance_routes())
    provider = CcxtProvider(
        exchange,
        ["BTC/USDT"],
        timeout_s=2.0,
        poll_seconds=0.05,
        streaming=False,
        rng=random.Random(SEED),
        admission=admission("ccxt:binance", per_minute=None),
    )
    before = refusals("ccxt:binance", "not_listed")
    provider.set_demand(frozenset({"ETH/USDT", "JUNK/USDT"}))
    records = await run_provider_until(provider, lambda r: ticked(r)["ETH/USDT"] >= 3)
    assert provider.symbols == ("BTC/USDT", "ETH/USDT")
    assert refusals("ccxt:binance", "not_listed") == before + 1
    assert "JUNK/USDT" not in ticked(records)
    assert not [url for url in session.requests if "JUNK" in url]
    assert len([url for url in session.requests if "exchangeInfo" in url]) == 1


@pytest.mark.usefixtures("yfinance_cache")
async def test_yahoo_looks_a_demanded_ticker_up_once() -> None:
    http = RecordedYahooSession(CHARTS)  # unknown tickers: the recorded 404
    provider = YahooProvider(
        ["AAPL"],
        timeout_s=5.0,
        poll_seconds=0.05,
        http=http,
        streaming=False,
        rng=random.Random(SEED),
        admission=admission("yfinance"),
    )
    provider.set_demand(frozenset({"EUR/USD", "ZZZZ"}))
    records = await run_provider_until(provider, lambda r: ticked(r)["EUR/USD"] >= 3, 30.0)
    assert provider.symbols == ("AAPL", "EUR/USD")
    assert "ZZZZ" not in ticked(records)
    assert len([url for url in http.requests if "/chart/ZZZZ" in url]) == 1
    assert not [url for url in http.requests if "ZZZZ" in url and "/chart/" not in url]


def quotes_by_symbol(answers: dict[str, str], seen: list[str]) -> httpx.MockTransport:
    """A recorded answer per requested symbol; every request's symbol goes to ``seen``."""

    def handler(request: httpx.Request) -> httpx.Response:
        symbol = request.url.params["symbol"]
        seen.append(symbol)
        name = answers.get(symbol, answers["*"])
        return httpx.Response(200, text=fixture(f"http/{name}"))

    return httpx.MockTransport(handler)


def alphavantage_ibm(answers: dict[str, str], seen: list[str]) -> AlphaVantageProvider:
    """Alpha Vantage configured with IBM, answering from ``answers`` (see
    :func:`quotes_by_symbol`), at most 5 lookups a minute, without the free tier's spacing
    (tested on its own)."""
    provider = AlphaVantageProvider(
        "alphavantage",
        KEY,
        ["IBM"],
        timeout_s=1,
        transport=quotes_by_symbol(answers, seen),
        admission=admission("alphavantage", per_minute=5),
    )
    provider.interval = 0.0
    return provider


async def test_alphavantage_spends_one_request_on_junk_and_polls_the_real_ones() -> None:
    seen: list[str] = []
    answers = {
        "IBM": "alphavantage_global_quote_ibm.json",
        "BADX": "alphavantage_invalid_symbol.json",
        "*": "alphavantage_global_quote_unknown.json",
    }
    provider = alphavantage_ibm(answers, seen)
    provider.set_demand(frozenset({"IBM", "BADX", "ZZZZ"}))
    records = await run_provider_until(provider, lambda r: ticked(r)["IBM"] >= 20)
    counts = Counter(seen)
    assert counts["BADX"] == counts["ZZZZ"] == 1  # one lookup each, never polled
    assert counts["IBM"] == ticked(records)["IBM"]  # configured: polled, never checked
    assert provider.symbols == ("IBM",)


async def test_a_flood_of_junk_costs_the_bound_and_half_the_turns_at_most() -> None:
    seen: list[str] = []
    provider = alphavantage_ibm(
        {"IBM": "alphavantage_global_quote_ibm.json", "*": "alphavantage_invalid_symbol.json"},
        seen,
    )
    provider.set_demand(frozenset(f"JUNK{n}" for n in range(500)))
    await run_provider_until(provider, lambda r: ticked(r)["IBM"] >= 30)
    junk = [symbol for symbol in seen if symbol != "IBM"]
    assert 1 <= len(junk) <= 5 and len(set(junk)) == len(junk)
    assert seen[: 2 * len(junk)].count("IBM") >= len(junk) - 1  # polls take every other turn


async def test_fmp_refuses_a_symbol_it_has_no_quote_for() -> None:
    seen: list[str] = []
    provider = FmpProvider(
        "fmp",
        KEY,
        ["AAPL"],
        timeout_s=1,
        transport=quotes_by_symbol(
            {"AAPL": "fmp_quote_aapl.json", "*": "fmp_quote_unknown.json"}, seen
        ),
        admission=admission("fmp"),
    )
    provider.interval = 0.0
    before = refusals("fmp", "not_found")
    provider.set_demand(frozenset({"ZZZZ"}))
    await run_provider_until(provider, lambda r: ticked(r)["AAPL"] >= 10)
    assert Counter(seen)["ZZZZ"] == 1
    assert refusals("fmp", "not_found") == before + 1
