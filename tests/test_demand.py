"""Demand-driven universe: the demand book, the lingering universe, the instrument catalog,
providers taking demanded symbols, and the whole path from a gateway subscription to ticks."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from ingest.demand import DemandBook, Universe
from ingest.providers.ccxt_provider import CcxtProvider
from ingest.providers.synthetic_provider import SyntheticProvider
from ingest.providers.yahoo_provider import YahooProvider
from ingest.service import run_ingest
from runtime.catalog import Catalog
from runtime.exchanges import make_exchange
from runtime.settings import Settings
from runtime.testing import free_port
from schemas import Demand, RawTick
from tests.factories import BASE_US, SECOND, quote
from tests.support import poll_until
from tests.support_gateway import first_answer, serve_gateway
from tests.support_kafka import produce, read_topic


def test_book_sums_gateways_and_ignores_stale_and_zero_records() -> None:
    book = DemandBook()
    book.apply(Demand("AMD", "gw-1", 2, BASE_US - 10 * SECOND, 60.0))
    book.apply(Demand("AMD", "gw-2", 3, BASE_US - 20 * SECOND, 60.0))
    book.apply(Demand("IBM", "gw-1", 1, BASE_US - 181 * SECOND, 60.0))
    book.apply(Demand("IBM", "gw-2", 4, BASE_US - 179 * SECOND, 60.0))
    book.apply(Demand("ORCL", "gw-1", 0, BASE_US, 60.0))
    assert book.subscribers(BASE_US) == {"AMD": 5, "IBM": 4}
    book.apply(Demand("AMD", "gw-1", 7, BASE_US - 30 * SECOND, 60.0))
    assert book.subscribers(BASE_US)["AMD"] == 5
    book.apply(Demand("AMD", "gw-1", 0, BASE_US, 60.0))
    assert book.subscribers(BASE_US)["AMD"] == 3


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["AMD", "IBM"]),
            st.sampled_from(["gw-1", "gw-2"]),
            st.integers(0, 3),
            st.integers(0, 600),
        ),
        max_size=12,
    ),
    st.integers(0, 400),
)
def test_book_forgets_only_records_that_count_for_nothing(records, idle_s) -> None:
    """Eviction never changes the subscribers, and keeps no record that counts for nothing
    (zero, or stale) once it is older than the span."""
    book = DemandBook()
    for symbol, gateway, count, age in records:
        book.apply(Demand(symbol, gateway, count, BASE_US - age * SECOND, 60.0))
    before = book.subscribers(BASE_US)
    book.evict(BASE_US, idle_s * SECOND)
    assert book.subscribers(BASE_US) == before
    for record in book.records.values():
        counts = record.subscribers and BASE_US - record.ts <= 180 * SECOND
        assert counts or BASE_US - record.ts <= idle_s * SECOND


def test_universe_lingers_after_demand_ends() -> None:
    universe = Universe(["AAPL"], linger_s=300)
    assert universe.update(["AMD", "AAPL"], BASE_US) == {"AMD"}
    assert universe.update([], BASE_US + 299 * SECOND) == {"AMD"}
    assert universe.update([], BASE_US + 301 * SECOND) == frozenset()


def test_universe_serves_at_most_its_cap_of_demanded_symbols() -> None:
    universe = Universe(["AAPL"], linger_s=10, cap=2)
    assert universe.update(["AAPL", "AMD", "IBM", "ZZZZ"], BASE_US) == {"AMD", "IBM"}
    # while held, a symbol stays; a new one waits for a place
    assert universe.update(["IBM", "ZZZZ"], BASE_US + 5 * SECOND) == {"AMD", "IBM"}
    assert universe.update(["IBM", "ZZZZ"], BASE_US + 11 * SECOND) == {"IBM", "ZZZZ"}


@pytest.mark.parametrize(
    ("providers", "symbol", "served"),
    [
        (("synthetic",), "ZZZZ", False),
        (("synthetic",), "AAPL", True),
        (("synthetic", "ccxt"), "WHATEVER/COIN", True),
        (("ccxt",), "BTC/USDT", True),
        (("ccxt",), "AMD", False),
        (("ccxt", "yfinance"), "AMD", True),
        (("ccxt", "yfinance"), "ZZZZ", False),
        (("yfinance",), "EUR/USD", True),
        (("yfinance",), "BTC/USDT", False),
        (("ccxt",), "EUR/USD", False),
        (("yfinance",), "AAPL", True),
    ],
)
def test_catalog(providers: tuple[str, ...], symbol: str, served: bool) -> None:
    assert Catalog.from_settings(Settings(providers=providers)).can_serve(symbol) is served


def test_the_synthetic_provider_serves_any_symbol_only_when_opted_in() -> None:
    opted_in = Settings(providers=("synthetic",), synthetic_any_symbol=True)
    assert Catalog.from_settings(opted_in).can_serve("ZZZZ")
    ignored = SyntheticProvider(Settings())
    ignored.set_demand(frozenset({"ZZZZ"}))
    assert "ZZZZ" not in ignored.market.prices and "AAPL" in ignored.market.prices


async def test_providers_take_the_demanded_symbols_they_can_serve() -> None:
    settings = Settings(synthetic_any_symbol=True)
    synthetic = SyntheticProvider(settings)
    exchange = make_exchange("kraken", 1.0)
    ccxt = CcxtProvider(exchange, settings.symbols, timeout_s=1, poll_seconds=1)
    yahoo = YahooProvider(settings.symbols, timeout_s=1, poll_seconds=1)
    try:
        demand = frozenset({"AMD", "PEPE/USDT", "EUR/USD"})
        for provider in (synthetic, ccxt, yahoo):
            provider.set_demand(demand)
        assert {"AMD", "PEPE/USDT", "EUR/USD"} <= set(synthetic.market.prices)
        assert ccxt.symbols[-1] == "PEPE/USDT" and "AMD" not in ccxt.symbols
        assert ccxt.symbols_changed.is_set()
        assert yahoo.served["AMD"] == "AMD" and yahoo.served["EURUSD=X"] == "EUR/USD"
        for provider in (synthetic, ccxt, yahoo):
            provider.set_demand(frozenset())
        assert "AMD" not in synthetic.market.prices and "AAPL" in synthetic.market.prices
        assert "PEPE/USDT" not in ccxt.symbols and "AMD" not in yahoo.served
    finally:
        await exchange.close()
        await yahoo.close()


def held(service: str) -> float | None:
    """The ``fiml_symbols_held`` gauge of ``service``."""
    return REGISTRY.get_sample_value("fiml_symbols_held", {"service": service})


async def amd_ticks(settings: Settings) -> int:
    return sum(
        tick.symbol == "AMD" for _, _, tick in await read_topic(settings, "ticks.raw", RawTick)
    )


async def test_demand_ends_the_stated_time_after_the_last_subscriber_and_state_shrinks(
    topics: Settings,
) -> None:
    """A subscription outside the universe reaches ingest; once its last subscriber leaves,
    ingest stops producing the symbol after the linger, and the per-symbol state of ingest
    and the gateway (held while demanded, however idle) goes back down."""
    settings = dataclasses.replace(
        topics,
        gateway_port=free_port(),
        synthetic_any_symbol=True,
        demand_linger_seconds=1.0,
        symbol_evict_seconds=1.0,
    )
    assert "AMD" not in settings.symbols
    stop = asyncio.Event()
    ingest = asyncio.create_task(run_ingest(settings, stop))
    try:
        async with serve_gateway(settings) as app:
            market = app.state.market
            async with websockets.connect(
                f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
            ) as ws:
                await ws.send(
                    json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["AMD"]})
                )
                ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert ack["type"] == "subscription_ack" and ack["symbols"] == ["AMD"]
                await poll_until(lambda: held("ingest") == 1, 30)
                await poll_until(lambda: amd_ticks(settings), 30, 0.5)
                await produce(settings, "quotes", [quote("AMD", 100.0, 1)])
                await poll_until(lambda: "AMD" in market.touched, 10)
                assert held("gateway") == 1
                await asyncio.sleep(2.0)  # idle past the span, but demanded: kept
                assert "AMD" in market.quotes.entries and held("ingest") == 1
            # the last subscriber left: zeros reach ingest, which stops after the linger
            await poll_until(lambda: held("ingest") == 0 and held("gateway") == 0, 15)
            assert not market.quotes.entries and not market.touched
            await asyncio.sleep(1.0)  # ticks already handed to the writer land
            produced = await amd_ticks(settings)
            await asyncio.sleep(2.0)
            assert await amd_ticks(settings) == produced, "ingest still produces AMD"
    finally:
        stop.set()
        await asyncio.wait_for(ingest, 30)


async def test_a_symbol_no_provider_serves_is_refused(topics: Settings) -> None:
    settings = dataclasses.replace(topics, gateway_port=free_port(), providers=("ccxt",))
    async with serve_gateway(settings):
        refused = await first_answer(settings.gateway_port, ["BTC/USDT", "ZZZZ"])
        accepted = await first_answer(settings.gateway_port, ["BTC/USDT"])
    assert refused["type"] == "error" and refused["error_code"] == "SUBSCRIPTION_ERROR"
    assert refused["message"].startswith("unknown symbol ZZZZ")
    assert accepted["type"] == "subscription_ack"


async def test_a_symbol_outside_the_synthetic_universe_is_refused_and_never_demanded(
    topics: Settings,
) -> None:
    settings = dataclasses.replace(topics, gateway_port=free_port())
    assert settings.providers == ("synthetic",) and not settings.synthetic_any_symbol
    async with serve_gateway(settings):
        refused = await first_answer(settings.gateway_port, ["AAPL", "ZZZZ"])
        async with websockets.connect(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream") as ws:
            await ws.send(
                json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["MSFT"]})
            )
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "subscription_ack"
            for _ in range(40):  # the publisher flushes every 0.5 s
                demanded = {d.symbol for _, _, d in await read_topic(settings, "demand", Demand)}
                if "MSFT" in demanded:
                    break
                await asyncio.sleep(0.25)
    assert refused["error_code"] == "SUBSCRIPTION_ERROR"
    assert refused["message"].startswith("unknown symbol ZZZZ")
    assert "MSFT" in demanded and "ZZZZ" not in demanded and "AAPL" not in demanded
