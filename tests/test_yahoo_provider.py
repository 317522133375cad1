"""The Yahoo Finance provider on recorded chart responses parsed by yfinance itself, with
yfinance's curl_cffi session replaced; and its faults, off the event loop."""

from __future__ import annotations

import asyncio
import random

import pytest
import yfinance as yf
from curl_cffi.requests import exceptions as http_errors
from websockets import exceptions as ws_errors
from websockets.datastructures import Headers
from websockets.http11 import Response

from ingest.providers.yahoo_mapping import (
    chart_to_tick,
    classify_yahoo_error,
    pricing_to_tick,
    yahoo_symbol,
)
from ingest.providers.yahoo_provider import YahooProvider
from runtime.backoff import LONG, NETWORK, RATE_LIMIT
from schemas import ProviderStatus, RawTick
from tests.support import worst_loop_stall
from tests.support_providers import Records, failures, has_tick, run_provider_until
from tests.yahoo_http import CHARTS, RecordedYahooSession

pytestmark = pytest.mark.usefixtures("yfinance_cache")


@pytest.mark.parametrize(
    ("canonical", "yahoo"),
    [
        ("AAPL", "AAPL"),
        ("BRK-B", "BRK-B"),
        ("^GSPC", "^GSPC"),
        ("GC=F", "GC=F"),
        ("EUR/USD", "EURUSD=X"),
        ("USD/JPY", "USDJPY=X"),
        ("BTC/USDT", None),
    ],
)
def test_symbol_mapping(canonical: str, yahoo: str | None) -> None:
    assert yahoo_symbol(canonical) == yahoo


def test_chart_and_pricing_mapping() -> None:
    meta = {
        "regularMarketPrice": 276.97,
        "regularMarketTime": 1764190800,
        "regularMarketVolume": 44934425,
        "chartPreviousClose": 275.5,
    }
    tick = chart_to_tick(meta, "AAPL", "yfinance", 1, 5)
    assert (tick.price, tick.ts_event, tick.volume, tick.reference_price) == (
        276.97,
        1764190800000000,
        44934425.0,
        275.5,
    )
    assert chart_to_tick({"regularMarketPrice": None}, "AAPL", "yfinance", 1, 5) is None
    message = {
        "id": "EURUSD=X",
        "price": 1.1571,
        "time": "1764151260000",
        "bid": 1.157,
        "ask": 1.1572,
    }
    tick = pricing_to_tick(message, "EUR/USD", "yfinance", 2, 5)
    assert (tick.symbol, tick.price, tick.bid, tick.ask, tick.ts_event) == (
        "EUR/USD",
        1.1571,
        1.157,
        1.1572,
        1764151260000000,
    )
    assert pricing_to_tick({"id": "X"}, "X", "yfinance", 3, 5) is None


@pytest.mark.parametrize(
    ("error", "kind", "policy"),
    [
        (yf.exceptions.YFRateLimitError(), "rate_limited", RATE_LIMIT),
        (yf.exceptions.YFPricesMissingError("ZZZZ", "no data"), "missing_market", LONG),
        (http_errors.Timeout("slow"), "timeout", NETWORK),
        (http_errors.DNSError("no resolve"), "network", NETWORK),
        (http_errors.HTTPError("HTTP Error 404: OK"), "missing_market", LONG),
        (http_errors.HTTPError("HTTP Error 429: Too Many Requests"), "rate_limited", RATE_LIMIT),
        (http_errors.HTTPError("HTTP Error 503: Service Unavailable"), "unavailable", NETWORK),
        (ValueError("garbage"), "bad_response", NETWORK),
        (
            ws_errors.InvalidStatus(Response(429, "Too Many Requests", Headers())),
            "rate_limited",
            RATE_LIMIT,
        ),
        (
            ws_errors.InvalidStatus(Response(503, "Service Unavailable", Headers())),
            "unavailable",
            NETWORK,
        ),
        (ws_errors.ConnectionClosedError(None, None), "network", NETWORK),
    ],
)
def test_classification(error: BaseException, kind: str, policy: object) -> None:
    failure = classify_yahoo_error(error)
    assert (failure.kind, failure.backoff) == (kind, policy)


def provider(symbols: tuple[str, ...], routes: dict, timeout_s: float = 5.0) -> YahooProvider:
    return YahooProvider(
        symbols,
        timeout_s=timeout_s,
        poll_seconds=0.05,
        http=RecordedYahooSession(routes),
        streaming=False,
        rng=random.Random(1),
    )


async def test_recorded_charts_become_ticks_and_bitcoin_is_left_to_exchanges() -> None:
    yahoo = provider(("AAPL", "EUR/USD", "BTC/USDT"), CHARTS)
    assert yahoo.served == {"AAPL": "AAPL", "EURUSD=X": "EUR/USD"}
    records = await run_provider_until(yahoo, has_tick, limit_s=20.0)
    ticks = {t.symbol: t for t in records if isinstance(t, RawTick)}
    assert (ticks["AAPL"].price, ticks["AAPL"].ts_event, ticks["AAPL"].volume) == (
        276.97,
        1764190800000000,
        44934425.0,
    )
    assert ticks["AAPL"].reference_price == 276.97
    assert (ticks["EUR/USD"].price, ticks["EUR/USD"].ts_event) == (1.1571, 1764151260000000)
    assert all(t.provider == "yfinance" and t.kind == "QUOTE" for t in ticks.values())
    assert [r.state for r in records if isinstance(r, ProviderStatus)] == ["UP"]
    assert any("/v8/finance/chart/EURUSD=X" in url for url in yahoo.http.requests)


async def test_an_unknown_ticker_is_reported_and_the_others_flow() -> None:
    yahoo = provider(("ZZZZ", "AAPL"), CHARTS)
    records = await run_provider_until(yahoo, has_tick, limit_s=20.0)
    [status] = failures(records)
    assert (status.state, status.error_kind) == ("DEGRADED", "missing_market")
    assert "ZZZZ" in status.message
    assert [t.symbol for t in records if isinstance(t, RawTick)] == ["AAPL"]


@pytest.mark.parametrize(
    ("answer", "kind", "state"),
    [
        (429, "rate_limited", "DEGRADED"),
        (502, "bad_response", "DEGRADED"),  # yfinance decodes the empty body and fails
        (http_errors.Timeout("timed out"), "timeout", "DOWN"),
        (http_errors.ConnectionError("refused"), "network", "DOWN"),
    ],
)
async def test_faults_give_a_status_never_a_crash(answer: object, kind: str, state: str) -> None:
    yahoo = provider(("AAPL",), {"/v8/finance/chart/AAPL": answer})
    records = await run_provider_until(yahoo, lambda r: bool(failures(r)), limit_s=20.0)
    status = failures(records)[0]
    assert (status.provider, status.state, status.error_kind) == ("yfinance", state, kind)
    assert "retrying in" in status.message


async def test_a_hanging_call_stays_off_the_event_loop_and_times_out() -> None:
    yahoo = provider(("AAPL",), {"/v8/finance/chart/AAPL": "hang"}, timeout_s=3.0)
    records: Records = []
    stop = asyncio.Event()

    async def emit(batch: Records) -> None:
        records.extend(batch)
        stop.set()

    task = asyncio.create_task(yahoo.run(emit, stop))
    # A call run on the loop would stall it for the whole 3 s timeout; 1.5 s leaves room for load.
    assert await worst_loop_stall() < 1.5
    await asyncio.wait_for(task, 10)
    yahoo.http.release.set()
    assert [(s.state, s.error_kind) for s in failures(records)] == [("DOWN", "timeout")]
