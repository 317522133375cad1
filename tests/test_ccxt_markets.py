"""The instrument catalog knows the spot pairs of the enabled CCXT exchanges: loaded through
ccxt from recorded Binance and Kraken market payloads, at gateway start, with a permissive
fallback while no exchange has answered."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import pytest

from fiml import catalog
from fiml.catalog import Catalog, ccxt_exchange_ids, needs_exchange_markets, remember_markets
from fiml.settings import Settings
from ingest.providers import ccxt_markets
from ingest.providers.backoff import Backoff
from ingest.providers.ccxt_markets import learn_exchange_markets
from ingest.providers.ccxt_provider import make_exchange
from tests.ccxt_http import RecordedSession, Reply, binance_routes, fixture
from tests.kafka_broker import free_port
from tests.test_demand import subscribe
from tests.test_gateway import serve_gateway

KRAKEN_ROUTES = {"/AssetPairs": Reply(fixture("ccxt/kraken_asset_pairs.json")),
                 "/Assets": Reply(fixture("ccxt/kraken_assets.json"))}


@pytest.fixture(autouse=True)
def no_known_markets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no exchange's markets known."""
    monkeypatch.setattr(catalog, "_SPOT_PAIRS", {})


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

    monkeypatch.setattr(ccxt_markets, "make_exchange", make)
    monkeypatch.setattr(ccxt_markets, "LONG", Backoff(base=0.05, cap=0.05))
    return made


def test_enabled_exchanges_and_when_markets_matter() -> None:
    assert ccxt_exchange_ids(Settings(providers=("ccxt", "ccxt:kraken", "yfinance"),
                                      ccxt_exchanges=("binance", "kraken"))) == (
        "binance", "kraken")
    assert ccxt_exchange_ids(Settings(providers=("ccxt:okx",))) == ("okx",)
    assert needs_exchange_markets(Settings(providers=("ccxt:okx", "yfinance")))
    assert not needs_exchange_markets(Settings(providers=("synthetic", "ccxt")))
    assert not needs_exchange_markets(Settings(providers=("yfinance",)))


def test_catalog_serves_the_listed_pairs_of_enabled_exchanges_only() -> None:
    settings = Settings(providers=("ccxt:kraken", "yfinance"))
    assert Catalog.from_settings(settings).crypto_pairs is None
    assert Catalog.from_settings(settings).can_serve("ANY/COIN")  # nothing known yet
    remember_markets("binance", frozenset({"ETH/USDT"}))
    assert Catalog.from_settings(settings).can_serve("ANY/COIN")  # binance is not enabled
    remember_markets("kraken", frozenset({"BTC/USD"}))
    known = Catalog.from_settings(settings)
    assert known.crypto_pairs == {"BTC/USD"}
    assert known.can_serve("BTC/USD") and known.can_serve("EUR/USD") and known.can_serve("AAPL")
    assert not known.can_serve("ETH/USDT") and not known.can_serve("ANY/COIN")
    assert Catalog.from_settings(Settings(providers=("synthetic", "ccxt:kraken"))).can_serve(
        "ANY/COIN")


async def test_markets_load_through_ccxt_and_a_failure_is_retried(
        recorded_exchanges: list[str]) -> None:
    pairs = await asyncio.wait_for(learn_exchange_markets("binance", 2.0, random.Random(1)), 10)
    assert pairs == {"BTC/USDT", "ETH/USDT"}
    assert recorded_exchanges == ["binance", "binance"]
    assert await learn_exchange_markets("kraken", 2.0) == {"BTC/USD"}
    settings = Settings(providers=("ccxt",), ccxt_exchanges=("binance", "kraken"))
    assert Catalog.from_settings(settings).crypto_pairs == {"BTC/USDT", "ETH/USDT", "BTC/USD"}


@pytest.mark.kafka
async def test_the_gateway_refuses_a_pair_no_enabled_exchange_lists(
        topics: Settings, recorded_exchanges: list[str]) -> None:
    settings = dataclasses.replace(topics, gateway_port=free_port(),
                                   providers=("ccxt:binance", "ccxt:kraken"))
    async with serve_gateway(settings):
        for _ in range(100):
            if set(catalog._SPOT_PAIRS) == {"binance", "kraken"}:
                break
            await asyncio.sleep(0.05)
        refused = await subscribe(settings.gateway_port, ["BTC/USD", "DOGE/EUR"])
        accepted = await subscribe(settings.gateway_port, ["BTC/USD", "ETH/USDT"])
    assert refused["type"] == "error" and refused["error_code"] == "SUBSCRIPTION_ERROR"
    assert refused["message"].startswith("unknown symbol DOGE/EUR")
    assert accepted["type"] == "subscription_ack"
