"""The CCXT provider on recorded Binance and Kraken payloads, parsed by ccxt itself, and
its behaviour under venue faults: each leads to a status and a backoff, never a crash."""

from __future__ import annotations

import asyncio
import json
import random
import re

import aiohttp
import pytest

from domain.books.consolidated import SymbolBooks
from domain.books.venue_book import Outcome
from ingest.providers.ccxt_provider import CcxtProvider
from runtime.backoff import LONG, NETWORK, RATE_LIMIT, Backoff
from runtime.exchanges import make_exchange
from schemas import ProviderStatus, RawTick
from schemas.books import SNAPSHOT, BookEvent
from tests.ccxt_http import RecordedSession, Reply, binance_routes, fixture
from tests.support import worst_loop_stall
from tests.support_providers import (
    SEED,
    Records,
    expected_delay,
    failures,
    has_tick,
    run_provider_until,
    statuses,
)


def binance(
    routes: dict,
    *,
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"),
    timeout_s: float = 2.0,
    book_depth: int | None = None,
) -> CcxtProvider:
    exchange = make_exchange("binance", timeout_s)
    exchange.session = RecordedSession(routes)
    return CcxtProvider(
        exchange,
        symbols,
        timeout_s=timeout_s,
        poll_seconds=0.05,
        streaming=False,
        rng=random.Random(SEED),
        book_depth=book_depth,
    )


async def test_polled_order_books_are_rest_snapshots_of_each_symbol() -> None:
    depth = fixture("books/binance_spot_NKNUSDT_rest_depth_limit1000.json")
    routes = {**binance_routes(), "/api/v3/depth": Reply(depth)}
    provider = binance(routes, book_depth=50)

    def two_books(records: Records) -> bool:
        return len([r for r in records if isinstance(r, BookEvent)]) >= 2

    records = await run_provider_until(provider, two_books)
    books = [r for r in records if isinstance(r, BookEvent)][:2]
    recorded = json.loads(depth)
    assert [(b.symbol, b.provider, b.kind) for b in books] == [
        ("BTC/USDT", "ccxt:binance", SNAPSHOT),
        ("ETH/USDT", "ccxt:binance", SNAPSHOT),
    ]
    assert books[0].last_update_id == recorded["lastUpdateId"] and books[0].depth == 100
    assert [float(x) for x in books[0].bids[0]] == [float(x) for x in recorded["bids"][0]]
    consolidated = SymbolBooks("BTC/USDT", depth=50)
    assert consolidated.apply(books[0]).outcome is Outcome.APPLIED
    assert len(consolidated.consolidated(0).bids) == 50


async def test_binance_rest_payloads_become_raw_ticks() -> None:
    provider = binance(binance_routes())
    records = await run_provider_until(provider, has_tick)
    assert provider.name == "ccxt:binance"
    assert isinstance(records[0], ProviderStatus) and records[0].state == "UP"
    assert records[0].latency_ms is not None and records[0].latency_ms >= 0
    quotes = {t.symbol: t for t in records if isinstance(t, RawTick) and t.kind == "QUOTE"}
    btc = quotes["BTC/USDT"]
    assert (btc.price, btc.bid, btc.ask, btc.bid_size, btc.ask_size) == (
        90500.01,
        90500.0,
        90500.01,
        1.53717,
        3.1245,
    )
    assert btc.volume == 15234.56789 and btc.reference_price == 91012.35
    assert btc.ts_event == 1764151200456000
    assert quotes["ETH/USDT"].price == 3015.0
    trades = [t for t in records if isinstance(t, RawTick) and t.kind == "TRADE"]
    assert [(t.symbol, t.trade_id, t.price, t.trade_size, t.side, t.ts_event) for t in trades] == [
        ("BTC/USDT", "3712345670", 90500.0, 0.015, "sell", 1764151199875000),
        ("BTC/USDT", "3712345671", 90500.01, 0.0012, "buy", 1764151200001000),
        ("ETH/USDT", "1200000001", 3015.0, 0.5, "buy", 1764151200500000),
    ]
    seqs = [t.seq for t in records if isinstance(t, RawTick)]
    assert seqs == sorted(set(seqs))
    assert provider.exchange.session is None


async def test_repeated_polls_do_not_repeat_trades() -> None:
    provider = binance(binance_routes())
    polls = 0

    def three_polls(records: Records) -> bool:
        nonlocal polls
        polls += 1
        return polls >= 3

    records = await run_provider_until(provider, three_polls)
    trades = [t.trade_id for t in records if isinstance(t, RawTick) and t.kind == "TRADE"]
    quotes = [t for t in records if isinstance(t, RawTick) and t.kind == "QUOTE"]
    assert len(trades) == len(set(trades)) == 3
    assert len(quotes) == 6


async def test_kraken_ticker_without_timestamp_and_a_missing_market() -> None:
    exchange = make_exchange("kraken", 2.0)
    exchange.session = RecordedSession(
        {
            "/AssetPairs": Reply(fixture("ccxt/kraken_asset_pairs.json")),
            "/Assets": Reply(fixture("ccxt/kraken_assets.json")),
            "/Ticker": Reply(fixture("ccxt/kraken_ticker.json")),
            "/Trades": Reply(json.dumps({"error": [], "result": {"XXBTZUSD": [], "last": "0"}})),
        }
    )
    provider = CcxtProvider(
        exchange,
        ("BTC/USD", "DOGE/EUR"),
        timeout_s=2.0,
        poll_seconds=0.05,
        streaming=False,
        rng=random.Random(SEED),
    )
    records = await run_provider_until(provider, has_tick)
    missing = failures(records)
    assert [(s.state, s.error_kind) for s in missing] == [("DEGRADED", "missing_market")]
    assert "DOGE/EUR" in missing[0].message
    tick = next(t for t in records if isinstance(t, RawTick))
    assert (tick.symbol, tick.provider, tick.price, tick.bid, tick.ask) == (
        "BTC/USD",
        "ccxt:kraken",
        90510.1,
        90510.0,
        90510.1,
    )
    assert tick.ts_event == tick.ts_ingest
    assert provider.poll_seconds == 1.0


def ticker_fault(reply: Reply) -> dict:
    return {**binance_routes(), "/api/v3/ticker/24hr": reply}


@pytest.mark.parametrize(
    ("reply", "kind", "state", "policy", "retry_after"),
    [
        (
            Reply(
                status=429,
                body='{"code":-1003,"msg":"Too many requests."}',
                headers={"Retry-After": "30"},
            ),
            "rate_limited",
            "DEGRADED",
            RATE_LIMIT,
            30.0,
        ),
        (
            Reply(status=429, body='{"code":-1003,"msg":"Too many requests."}'),
            "rate_limited",
            "DEGRADED",
            RATE_LIMIT,
            None,
        ),
        (
            Reply(status=503, body="Service Unavailable", headers={"Content-Type": "text/html"}),
            "unavailable",
            "DOWN",
            LONG,
            None,
        ),
        (
            Reply(
                status=502, body="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}
            ),
            "unavailable",
            "DOWN",
            LONG,
            None,
        ),
        (
            Reply(
                status=451,
                body='{"code":0,"msg":"Service unavailable from a restricted location '
                "according to 'b. Eligibility'.\"}",
            ),
            "region_blocked",
            "DOWN",
            LONG,
            None,
        ),
        (Reply(error=TimeoutError()), "timeout", "DOWN", NETWORK, None),
        (Reply(error=aiohttp.ServerDisconnectedError()), "unavailable", "DOWN", LONG, None),
        (
            Reply(body='[{"symbol": "BTCUSDT", "lastPrice": '),
            "bad_response",
            "DEGRADED",
            NETWORK,
            None,
        ),
    ],
)
async def test_faults_give_a_status_and_the_documented_backoff(
    reply: Reply, kind: str, state: str, policy: Backoff, retry_after: float | None
) -> None:
    provider = binance(ticker_fault(reply))
    records = await run_provider_until(provider, lambda r: bool(failures(r)))
    status = failures(records)[0]
    assert (status.provider, status.state, status.error_kind) == ("ccxt:binance", state, kind)
    assert status.message.endswith(expected_delay(policy, 0, retry_after))
    if retry_after is not None:
        assert float(re.search(r"retrying in ([\d.]+) s", status.message)[1]) >= retry_after


async def test_missing_fields_are_skipped_not_crashed_on() -> None:
    tickers = json.loads(fixture("ccxt/binance_ticker_24hr.json"))
    for key in ("lastPrice", "bidPrice", "askPrice", "closeTime"):
        tickers[0].pop(key)
    tickers[1] = {"symbol": "ETHUSDT", "lastPrice": None, "bidPrice": None}
    provider = binance(ticker_fault(Reply(json.dumps(tickers))))
    records = await run_provider_until(provider, has_tick)
    quotes = {t.symbol: t for t in records if isinstance(t, RawTick) and t.kind == "QUOTE"}
    assert not failures(records)
    btc = quotes["BTC/USDT"]
    assert (btc.price, btc.bid, btc.ask) == (90500.01, None, None)
    assert btc.ts_event == btc.ts_ingest
    assert "ETH/USDT" not in quotes


async def test_a_venue_that_stops_sending_goes_down_and_is_retried() -> None:
    calls = 0

    def answers_once(url: str) -> Reply:
        nonlocal calls
        calls += 1
        return Reply(fixture("ccxt/binance_ticker_24hr.json"), hang=calls > 1)

    provider = binance(ticker_fault(answers_once), timeout_s=1.0)
    records = await run_provider_until(provider, lambda r: len(failures(r)) >= 2)
    kinds = [(s.state, s.error_kind) for s in statuses(records)]
    assert kinds == [("UP", None), ("DOWN", "timeout"), ("DOWN", "timeout")]
    assert any(isinstance(x, RawTick) for x in records)
    down = failures(records)
    assert down[0].message.endswith(expected_delay(NETWORK, 0))
    assert down[1].message.endswith(expected_delay(NETWORK, 1))


async def test_the_event_loop_stays_responsive_while_a_call_hangs() -> None:
    provider = binance(ticker_fault(Reply(hang=True)), timeout_s=3.0)
    stop = asyncio.Event()
    records: Records = []

    async def emit(batch: Records) -> None:
        records.extend(batch)

    task = asyncio.create_task(provider.run(emit, stop))
    # A call run on the loop would stall it for the whole 3 s timeout; 1.5 s leaves room for load.
    assert await worst_loop_stall() < 1.5
    assert not failures(records)
    stop.set()
    await asyncio.wait_for(task, 10)
