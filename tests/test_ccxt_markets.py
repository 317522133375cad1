"""The instrument catalog knows the spot pairs of the enabled CCXT exchanges: loaded through
ccxt from recorded Binance and Kraken market payloads, at gateway start, with a permissive
fallback while no exchange has answered."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import pytest

from runtime import exchanges
from runtime.backoff import Backoff
from runtime.catalog import Catalog, ExchangeMarkets, ccxt_exchange_ids, needs_exchange_markets
from runtime.exchanges import learn_exchange_markets, make_exchange
from runtime.settings import Settings
from runtime.testing import free_port
from tests.ccxt_http import RecordedSession, Reply, binance_routes, fixture
from tests.support_gateway import first_answer, serve_gateway

KRAKEN_ROUTES = {
    "/AssetPairs": Reply(fixture("ccxt/kraken_asset_pairs.json")),
    "/Assets": Reply(fixture("ccxt/kraken_assets.json")),
}


@pytest.fixture
def recorded_exchanges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ccxt exchanges answering from recorded payloads; Binance's first answer is a 503."""
    made: list[str] = []

    def make(exchange_id: str, timeout_s: float) -> Any:
        exchange = make_exchange(exchange_id, timeout_s)
        routes = KRAKEN_ROUTES if exchange_id == "kraken" else binance_routes()
        if exchange_id == "binance" and "binance" not in made:
            routes = {"/api/v3/exchangeInfo": Reply("Service Unavailable", status=503)}
        exchange.session = RecordedSession(routes)
        made.append(exchange_id)
        return exchange

    monkeypatch.setattr(exchanges, "make_exchange", make)
    monkeypatch.setattr(exchanges, "LONG", Backoff(base=0.05, cap=0.05))
    return made


def test_enabled_exchanges_and_when_markets_matter() -> None:
    assert ccxt_exchange_ids(
        Settings(
            providers=("ccxt", "ccxt:kraken", "yfinance"), ccxt_exchanges=("binance", "kraken")
        )
    ) == ("binance", "kraken")
    assert ccxt_exchange_ids(Settings(providers=("ccxt:okx",))) == ("okx",)
    assert needs_exchange_markets(Settings(providers=("ccxt:okx", "yfinance")))
    assert needs_exchange_markets(Settings(providers=("synthetic", "ccxt")))
    assert not needs_exchange_markets(
        Settings(providers=("synthetic", "ccxt"), synthetic_any_symbol=True)
    )
    assert not needs_exchange_markets(Settings(providers=("yfinance",)))


def test_catalog_serves_the_listed_pairs_of_enabled_exchanges_only() -> None:
    markets = ExchangeMarkets()
    catalog = Catalog.from_settings(Settings(providers=("ccxt:kraken", "yfinance")), markets)
    assert catalog.can_serve("ANY/COIN")  # nothing known yet
    markets.remember("binance", frozenset({"ETH/USDT"}))
    assert catalog.can_serve("ANY/COIN")  # binance is not enabled
    markets.remember("kraken", frozenset({"BTC/USD"}))
    assert catalog.can_serve("BTC/USD") and catalog.can_serve("EUR/USD")
    assert catalog.can_serve("AAPL")
    assert not catalog.can_serve("ETH/USDT") and not catalog.can_serve("ANY/COIN")
    assert Catalog.from_settings(
        Settings(providers=("synthetic", "ccxt:kraken"), synthetic_any_symbol=True), markets
    ).can_serve("ANY/COIN")
    assert not Catalog.from_settings(
        Settings(providers=("synthetic", "ccxt:kraken")), markets
    ).can_serve("ANY/COIN")


async def test_markets_load_through_ccxt_and_a_failure_is_retried(
    recorded_exchanges: list[str],
) -> None:
    markets = ExchangeMarkets()
    pairs = await asyncio.wait_for(
        learn_exchange_markets("binance", 2.0, markets, random.Random(1)), 10
    )
    assert pairs == {"BTC/USDT", "ETH/USDT"}
    assert recorded_exchanges == ["binance", "binance"]
    assert await learn_exchange_markets("kraken", 2.0, markets) == {"BTC/USD"}
    assert markets.pairs == {"binance": {"BTC/USDT", "ETH/USDT"}, "kraken": {"BTC/USD"}}
    catalog = Catalog.from_settings(
        Settings(providers=("ccxt",), ccxt_exchanges=("binance", "kraken")), markets
    )
    assert catalog.can_serve("BTC/USD") and catalog.can_serve("ETH/USDT")
    assert not catalog.can_serve("DOGE/EUR")


async def test_the_gateway_refuses_a_pair_no_enabled_exchange_lists(
    topics: Settings, recorded_exchanges: list[str]
) -> None:
    settings = dataclasses.replace(
        topics, gateway_port=free_port(), providers=("ccxt:binance", "ccxt:kraken")
    )
    async with serve_gateway(settings) as app:
        for _ in range(100):
            if set(app.state.exchange_markets.pairs) == {"binance", "kraken"}:
                break
            await asyncio.sleep(0.05)
        refused = await first_answer(settings.gateway_port, ["BTC/USD", "DOGE/EUR"])
        accepted = await first_answer(settings.gateway_port, ["BTC/USD", "ETH/USDT"])
    assert refused["type"] == "error" and refused["error_code"] == "SUBSCRIPTION_ERROR"
    assert refused["message"].startswith("unknown symbol DOGE/EUR")
    assert accepted["type"] == "subscription_ack"
