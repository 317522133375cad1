"""The Yahoo Finance provider streaming through yfinance's AsyncWebSocket from a local
stand-in of Yahoo's streamer (recorded updates encoded with yfinance's own PricingData
protobuf and decoded by the library); a quiet stream gets a chart poll, a malformed frame
or a refused connection a status and a backoff."""

from __future__ import annotations

import random

import pytest
import yfinance as yf

from ingest.providers.yahoo_provider import YahooProvider
from schemas import ProviderStatus, RawTick
from tests.support_providers import Records, failures, run_provider_until
from tests.yahoo_http import CHARTS, RecordedYahooSession
from tests.yahoo_ws import RecordedStreamer

pytestmark = pytest.mark.usefixtures("yfinance_cache")


def streaming(symbols: tuple[str, ...], url: str, stall_s: float) -> YahooProvider:
    return YahooProvider(
        symbols,
        timeout_s=5.0,
        stall_s=stall_s,
        poll_seconds=0.05,
        http=RecordedYahooSession(CHARTS),
        stream_url=url,
        rng=random.Random(1),
    )


def ticks(records: Records) -> list[RawTick]:
    return [r for r in records if isinstance(r, RawTick)]


def tick_count(count: int):
    return lambda records: len(ticks(records)) >= count


async def test_streamed_updates_become_ticks_for_every_kind_of_instrument() -> None:
    assert hasattr(yf, "AsyncWebSocket")
    async with RecordedStreamer().running() as streamer:
        yahoo = streaming(("AAPL", "EUR/USD", "GC=F", "^GSPC", "BTC/USDT"), streamer.url, 5.0)
        assert yahoo.streaming
        records = await run_provider_until(yahoo, tick_count(4))
    assert [sorted(tickers) for tickers in streamer.subscriptions] == [
        ["AAPL", "EURUSD=X", "GC=F", "^GSPC"]
    ]
    by_symbol = {t.symbol: t for t in ticks(records)}
    aapl = by_symbol["AAPL"]
    assert (aapl.provider, aapl.kind, aapl.price, aapl.bid, aapl.ask) == (
        "yfinance",
        "QUOTE",
        276.97,
        276.96,
        276.98,
    )
    assert (aapl.bid_size, aapl.ask_size, aapl.volume, aapl.reference_price) == (
        300.0,
        200.0,
        44934425.0,
        275.5,
    )
    assert aapl.ts_event == 1764190800000000
    assert [(by_symbol[s].price, by_symbol[s].ts_event) for s in ("EUR/USD", "GC=F", "^GSPC")] == [
        (1.1571, 1764151260000000),
        (4165.3, 1764151255000000),
        (6812.61, 1764190802000000),
    ]
    assert by_symbol["EUR/USD"].bid is None and by_symbol["GC=F"].volume == 98231.0
    assert [r.state for r in records if isinstance(r, ProviderStatus)] == ["UP"]


async def test_a_quiet_stream_is_checked_with_a_chart_poll() -> None:
    async with RecordedStreamer().running() as streamer:
        yahoo = streaming(("AAPL",), streamer.url, 0.3)
        records = await run_provider_until(yahoo, tick_count(2))
    streamed, polled = ticks(records)
    assert (streamed.bid, streamed.reference_price) == (276.96, 275.5)
    assert (polled.price, polled.bid, polled.reference_price) == (276.97, None, 276.97)
    assert not failures(records)
    assert any("/v8/finance/chart/AAPL" in url for url in yahoo.http.requests)


async def test_a_malformed_frame_is_a_bad_response() -> None:
    garbage = '{"type": "pricing", "message": "bm90IGEgcHJpY2luZyBtZXNzYWdl"}'
    async with RecordedStreamer(extra=(garbage,)).running() as streamer:
        yahoo = streaming(("AAPL",), streamer.url, 5.0)
        records = await run_provider_until(yahoo, lambda r: bool(failures(r)))
    assert [t.symbol for t in ticks(records)] == ["AAPL"]
    [status] = failures(records)
    assert (status.state, status.error_kind) == ("DEGRADED", "bad_response")
    assert "retrying in" in status.message


async def test_a_refused_streamer_connection_is_a_network_failure() -> None:
    async with RecordedStreamer().running() as streamer:
        url = streamer.url
    yahoo = streaming(("AAPL",), url, 5.0)
    records = await run_provider_until(yahoo, lambda r: bool(failures(r)))
    [status] = failures(records)
    assert (status.state, status.error_kind) == ("DOWN", "network")


async def test_demand_for_another_symbol_resubscribes() -> None:
    async with RecordedStreamer().running() as streamer:
        yahoo = streaming(("AAPL",), streamer.url, 5.0)

        def more_demand_after_the_first_tick(records: Records) -> bool:
            if len(ticks(records)) == 1:
                yahoo.set_demand(frozenset({"EUR/USD"}))
            return any(t.symbol == "EUR/USD" for t in ticks(records))

        records = await run_provider_until(yahoo, more_demand_after_the_first_tick)
    assert [sorted(tickers) for tickers in streamer.subscriptions] == [
        ["AAPL"],
        ["AAPL", "EURUSD=X"],
    ]
    assert ticks(records)[0].symbol == "AAPL" and ticks(records)[-1].price == 1.1571
