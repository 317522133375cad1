"""Alpha Vantage and FMP on recorded responses through httpx.MockTransport: ticks, quota
spacing, rate limits, refused keys, unknown symbols and the key kept out of statuses."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import httpx
import pytest

from ingest.providers.alphavantage import AlphaVantageProvider
from ingest.providers.fmp import FmpProvider
from ingest.providers.keyed_http import spacing
from ingest.providers.registry import build_providers
from runtime.backoff import RATE_LIMIT
from runtime.catalog import provider_names
from runtime.settings import Settings
from schemas import ProviderStatus, RawTick
from tests.ccxt_http import fixture
from tests.support_providers import Records, has_tick, run_provider_until

KEY = "TESTKEY123"


def transport(
    answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.MockTransport(handler)


def recorded(name: str, status: int = 200, **headers: str) -> Callable:
    return lambda request: httpx.Response(
        status,
        text=fixture(f"http/{name}"),
        headers={"Content-Type": "application/json", **headers},
    )


def failed(records: Records) -> bool:
    return any(isinstance(r, ProviderStatus) and r.state != "UP" for r in records)


def test_free_tier_spacing() -> None:
    assert spacing(5, 25) == pytest.approx(3456.0)
    assert spacing(250, 250) == pytest.approx(345.6)
    assert AlphaVantageProvider("alphavantage", KEY, ["IBM"], timeout_s=1).interval == 3456.0
    assert FmpProvider("fmp", KEY, ["AAPL"], timeout_s=1).interval == pytest.approx(345.6)


async def test_alphavantage_global_quote() -> None:
    seen: list[httpx.Request] = []
    provider = AlphaVantageProvider(
        "alphavantage",
        KEY,
        ["IBM", "BTC/USDT"],
        timeout_s=1,
        transport=transport(recorded("alphavantage_global_quote_ibm.json"), seen),
    )
    assert provider.symbols == ("IBM",)
    records = await run_provider_until(provider, has_tick)
    tick = next(r for r in records if isinstance(r, RawTick))
    assert (tick.symbol, tick.provider, tick.price, tick.volume, tick.reference_price) == (
        "IBM",
        "alphavantage",
        311.42,
        4219735.0,
        307.64,
    )
    assert tick.ts_event == tick.ts_ingest
    assert dict(seen[0].url.params) == {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": KEY}


async def test_fmp_quote_time_in_micros() -> None:
    seen: list[httpx.Request] = []
    provider = FmpProvider(
        "fmp",
        KEY,
        ["AAPL"],
        timeout_s=1,
        transport=transport(recorded("fmp_quote_aapl.json"), seen),
    )
    records = await run_provider_until(provider, has_tick)
    tick = next(r for r in records if isinstance(r, RawTick))
    assert (tick.symbol, tick.price, tick.ts_event, tick.reference_price) == (
        "AAPL",
        276.97,
        1764190801000000,
        275.92,
    )
    assert seen[0].url.path == "/stable/quote"


@pytest.mark.parametrize(
    ("make", "answer", "kind", "state"),
    [
        (
            AlphaVantageProvider,
            recorded("alphavantage_daily_limit.json"),
            "rate_limited",
            "DEGRADED",
        ),
        (
            AlphaVantageProvider,
            recorded("alphavantage_invalid_symbol.json"),
            "missing_market",
            "DEGRADED",
        ),
        (FmpProvider, recorded("fmp_invalid_key.json", 401), "unauthorized", "DOWN"),
        (FmpProvider, recorded("fmp_invalid_key.json"), "unauthorized", "DOWN"),
        (FmpProvider, lambda r: httpx.Response(200, json=[]), "missing_market", "DEGRADED"),
        (FmpProvider, lambda r: httpx.Response(503, text="busy"), "unavailable", "DOWN"),
        (FmpProvider, lambda r: httpx.Response(200, text="{oops"), "bad_response", "DEGRADED"),
        (
            FmpProvider,
            lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)),
            "timeout",
            "DOWN",
        ),
        (
            FmpProvider,
            lambda r: (_ for _ in ()).throw(httpx.ConnectError(f"refused {r.url}", request=r)),
            "network",
            "DOWN",
        ),
    ],
)
async def test_faults(make: type, answer: Callable, kind: str, state: str) -> None:
    provider = make(
        make.__name__,
        KEY,
        ["AAPL"],
        timeout_s=1,
        transport=transport(answer, []),
        rng=random.Random(2),
    )
    records = await run_provider_until(provider, failed)
    status = next(r for r in records if isinstance(r, ProviderStatus) and r.state != "UP")
    assert (status.state, status.error_kind) == (state, kind)
    assert KEY not in status.message


@pytest.mark.parametrize(("headers", "floor"), [({"Retry-After": "90"}, 90.0), ({}, None)])
async def test_http_429_with_and_without_retry_after(headers: dict, floor: float | None) -> None:
    answer = lambda request: httpx.Response(  # noqa: E731
        429,
        json={"message": "Limit Reach"},
        headers=headers,
    )
    provider = FmpProvider(
        "fmp", KEY, ["AAPL"], timeout_s=1, transport=transport(answer, []), rng=random.Random(2)
    )
    records = await run_provider_until(provider, failed)
    status = next(r for r in records if isinstance(r, ProviderStatus))
    expected = RATE_LIMIT.delay(0, random.Random(2), floor)
    assert status.error_kind == "rate_limited"
    assert status.message.endswith(f"retrying in {expected:.1f} s")
    assert (expected >= 90.0) == (floor is not None)


def test_news_takes_its_share_of_each_keys_daily_quota() -> None:
    settings = Settings(alphavantage_api_key=KEY, fmp_api_key=KEY, alphavantage_news_per_day=10)
    providers = {p.name: p for p in build_providers(settings)}
    assert list(providers) == [
        "synthetic",
        "alphavantage",
        "fmp",
        "synthetic-news",
        "fmp-news",
        "alphavantage-news",
    ]
    day = 86_400.0
    assert providers["alphavantage"].interval == day / 15  # quotes keep 15 of 25
    assert providers["alphavantage-news"].budget.interval_s == day / 10
    assert providers["alphavantage-news"].budget.demand_only
    assert providers["fmp"].interval == day / 200  # quotes keep 200 of 250
    assert providers["fmp-news"].budget.interval_s == day / 50
    quiet = {p.name: p for p in build_providers(dataclasses.replace(settings, news=False))}
    assert list(quiet) == ["synthetic", "alphavantage", "fmp"]
    assert quiet["alphavantage"].interval == day / 25
    assert quiet["fmp"].interval == day / 250
    no_av_news = dataclasses.replace(settings, alphavantage_news_per_day=0)
    assert "alphavantage-news" not in [p.name for p in build_providers(no_av_news)]


def test_keyed_providers_run_when_their_key_is_set() -> None:
    assert provider_names(Settings()) == ["synthetic"]
    settings = Settings(alphavantage_api_key=KEY, fmp_api_key=KEY)
    assert provider_names(settings) == ["synthetic", "alphavantage", "fmp"]
    assert [p.name for p in build_providers(dataclasses.replace(settings, news=False))] == [
        "synthetic",
        "alphavantage",
        "fmp",
    ]
    with pytest.raises(ValueError, match="FIML_FMP_API_KEY"):
        build_providers(Settings(providers=("synthetic", "fmp")))
