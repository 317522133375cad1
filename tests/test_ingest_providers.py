"""The provider registry and ingest with live providers on a machine without network."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from ingest.providers.ccxt_provider import CcxtProvider
from ingest.providers.registry import build_providers
from ingest.providers.synthetic_provider import SyntheticProvider
from ingest.providers.yahoo_provider import YahooProvider
from ingest.service import run_ingest
from ingest.venues import DEFAULT_VENUES
from runtime.settings import Settings
from runtime.settings_checks import SettingsError
from schemas import ProviderStatus, RawTick
from schemas.books import SNAPSHOT, BookEvent
from tests.support_kafka import read_topic


def test_registry_expands_families_and_members() -> None:
    settings = Settings(
        providers=("synthetic", "ccxt", "ccxt:kraken", "yfinance"),
        ccxt_exchanges=("binance", "okx"),
    )
    providers = build_providers(settings)
    assert [p.name for p in providers] == [
        "synthetic",
        "ccxt:binance",
        "ccxt:okx",
        "ccxt:kraken",
        "yfinance",
        "synthetic-news",
        "yfinance-news",
    ]
    assert isinstance(providers[0], SyntheticProvider)
    assert all(isinstance(p, CcxtProvider) for p in providers[1:4])
    assert isinstance(providers[4], YahooProvider)
    assert list(providers[4].served) == [
        "AAPL",
        "GOOGL",
        "MSFT",
        "TSLA",
        "NVDA",
        "AMZN",
        "META",
        "SPY",
    ]
    assert providers[1].symbols == ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT")


def test_call_timeout_and_stall_time_are_separate_settings() -> None:
    settings = Settings.from_env(
        {
            "FIML_PROVIDERS": "ccxt:kraken,yfinance",
            "FIML_PROVIDER_CALL_TIMEOUT_SECONDS": "4",
            "FIML_PROVIDER_STALL_SECONDS": "45",
        }
    )
    kraken, yahoo, yahoo_news = build_providers(settings)
    assert yahoo_news.timeout_s == 4.0
    assert (kraken.timeout_s, kraken.stall_s, kraken.exchange.timeout) == (4.0, 45.0, 4000)
    assert (yahoo.timeout_s, yahoo.stall_s) == (4.0, 45.0)
    with pytest.raises(SettingsError, match="FIML_PROVIDER_STALL_SECONDS must be above zero"):
        Settings.from_env({"FIML_PROVIDER_STALL_SECONDS": "0"})


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        (("synthetic", "bloomberg"), "unknown providers: bloomberg"),
        (("ccxt:nosuchexchange",), "unknown ccxt exchange 'nosuchexchange'"),
        (("synthetic:alpha",), "unknown provider synthetic:alpha"),
    ],
)
def test_registry_refuses_unknown_providers(providers: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_providers(Settings(providers=providers))


async def test_offline_live_providers_report_down_while_synthetic_flows(topics: Settings) -> None:
    settings = dataclasses.replace(
        topics,
        providers=("synthetic", "ccxt:binance", "ccxt:kraken", "yfinance"),
        provider_call_timeout_seconds=1.0,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, stop))
    await asyncio.sleep(4.0)
    assert not task.done()
    stop.set()
    counters = await asyncio.wait_for(task, 15)
    assert counters.ticks > 0
    statuses = [
        record for _, _, record in await read_topic(settings, "provider.status", ProviderStatus)
    ]
    for name in ("ccxt:binance", "ccxt:kraken", "yfinance"):
        mine = [status for status in statuses if status.provider == name]
        assert mine, f"no status from {name}"
        assert all(status.state == "DOWN" for status in mine)
        assert all(status.error_kind in ("unavailable", "timeout", "network") for status in mine)
        assert all("retrying in" in status.message for status in mine)
    ticks = [record for _, _, record in await read_topic(settings, "ticks.raw", RawTick)]
    assert ticks and all(tick.provider.startswith("synthetic:") for tick in ticks)
    books = await read_topic(settings, "books.raw", BookEvent)
    assert counters.books == len(books) > 0
    assert all("/" in event.symbol for _, _, event in books)
    assert len({(event.symbol, partition) for partition, _, event in books}) == len(
        {event.symbol for _, _, event in books}
    )
    first: dict[tuple[str, str], str] = {}
    for _, _, event in books:
        first.setdefault((event.provider, event.symbol), event.kind)
    assert {event.provider for _, _, event in books} == {venue.name for venue in DEFAULT_VENUES}
    assert set(first.values()) == {SNAPSHOT}
