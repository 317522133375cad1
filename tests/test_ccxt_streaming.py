"""The CCXT provider streaming through ccxt.pro's own WebSocket client, subscription and
parsing, on recorded Binance and Kraken (v2) WebSocket messages; and a stream that stops
sending or sends a malformed frame: a ``timeout`` status, a backoff, a fresh connection."""

from __future__ import annotations

import copy
import json
import random

import pytest

from domain.books.consolidated import SymbolBooks
from domain.books.venue_book import Outcome
from ingest.providers.ccxt_provider import CcxtProvider
from runtime.backoff import NETWORK
from runtime.exchanges import make_exchange
from schemas import RawTick
from schemas.books import SNAPSHOT, BookEvent
from tests.ccxt_http import RecordedSession, Reply, binance_routes, fixture
from tests.ccxt_ws import RecordedVenue, binance_answer, kraken_answer
from tests.support_books import recorded
from tests.support_providers import (
    SEED,
    Records,
    expected_delay,
    failures,
    run_provider_until,
    statuses,
)

BINANCE_STREAMS = json.loads(fixture("ccxt/binance_ws_messages.json"))
KRAKEN_MESSAGES = json.loads(fixture("ccxt/kraken_ws_v2_messages.json"))


def streaming(
    exchange_id: str,
    routes: dict,
    symbols: tuple[str, ...],
    stall_s: float,
    book_depth: int | None = None,
) -> CcxtProvider:
    exchange = make_exchange(exchange_id, 2.0)
    exchange.session = RecordedSession(routes)
    return CcxtProvider(
        exchange,
        symbols,
        timeout_s=2.0,
        stall_s=stall_s,
        poll_seconds=0.05,
        rng=random.Random(SEED),
        book_depth=book_depth,
    )


def ticks(records: Records, kind: str) -> list[RawTick]:
    return [r for r in records if isinstance(r, RawTick) and r.kind == kind]


def has_quotes_and_trades(count: int):
    return lambda records: len(ticks(records, "QUOTE")) + len(ticks(records, "TRADE")) >= count


async def test_binance_ticker_and_trade_streams_become_raw_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = RecordedVenue(binance_answer(BINANCE_STREAMS)).install(monkeypatch)
    provider = streaming("binance", binance_routes(), ("BTC/USDT", "ETH/USDT"), stall_s=5.0)
    assert provider.streaming
    records = await run_provider_until(provider, has_quotes_and_trades(5))
    assert sorted(request["params"] for socket in venue.sockets for request in socket.sent) == [
        ["btcusdt@ticker", "ethusdt@ticker"],
        ["btcusdt@trade", "ethusdt@trade"],
    ]
    quotes = {t.symbol: t for t in ticks(records, "QUOTE")}
    btc, eth = quotes["BTC/USDT"], quotes["ETH/USDT"]
    assert (btc.provider, btc.price, btc.bid, btc.ask, btc.bid_size, btc.ask_size) == (
        "ccxt:binance",
        90500.01,
        90500.0,
        90500.01,
        1.53717,
        3.1245,
    )
    assert (btc.volume, btc.reference_price, btc.ts_event) == (
        15234.56789,
        91012.35,
        1764151200456000,
    )
    assert (eth.price, eth.bid, eth.ask, eth.ts_event) == (
        3015.0,
        3014.99,
        3015.0,
        1764151200601000,
    )
    assert sorted(
        (t.symbol, t.trade_id, t.price, t.trade_size, t.side, t.ts_event)
        for t in ticks(records, "TRADE")
    ) == [
        ("BTC/USDT", "5503456702", 90500.01, 0.0012, "buy", 1764151200001000),
        ("BTC/USDT", "5503456703", 90500.0, 0.25, "sell", 1764151200118000),
        ("ETH/USDT", "3121998878", 3015.0, 0.5, "buy", 1764151200500000),
    ]
    assert [s.state for s in statuses(records)] == ["UP"]


async def test_kraken_v2_ticker_and_trade_channels_become_raw_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = RecordedVenue(kraken_answer(KRAKEN_MESSAGES)).install(monkeypatch)
    routes = {
        "/AssetPairs": Reply(fixture("ccxt/kraken_asset_pairs.json")),
        "/Assets": Reply(fixture("ccxt/kraken_assets.json")),
    }
    # ccxt spaces the subscribe requests by Kraken's rate limit (1 s), so allow for that
    provider = streaming("kraken", routes, ("BTC/USD",), stall_s=5.0)
    records = await run_provider_until(provider, has_quotes_and_trades(3))
    [socket] = venue.sockets
    assert socket.url == "wss://ws.kraken.com/v2"
    assert [(r["params"]["channel"], r["params"]["symbol"]) for r in socket.sent] == [
        ("ticker", ["BTC/USD"]),
        ("trade", ["BTC/USD"]),
    ]
    [quote] = ticks(records, "QUOTE")
    assert (quote.symbol, quote.provider, quote.price, quote.bid, quote.ask) == (
        "BTC/USD",
        "ccxt:kraken",
        90510.1,
        90510.0,
        90510.1,
    )
    assert (quote.bid_size, quote.ask_size, quote.volume) == (3.04537826, 0.97128401, 2345.67890123)
    assert quote.ts_event == quote.ts_ingest  # Kraken's ticker carries no time
    assert [
        (t.trade_id, t.price, t.trade_size, t.side, t.ts_event) for t in ticks(records, "TRADE")
    ] == [
        ("87654321", 90510.0, 0.0125, "sell", 1764151200708000),
        ("87654322", 90510.1, 0.5, "buy", 1764151201250000),
    ]


async def test_kraken_books_stream_beside_ticker_and_trades_as_checked_book_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = recorded("kraken_watchOrderBook.json")["watchOrderBook"][1]["messages"][2:]
    venue = RecordedVenue(kraken_answer({**KRAKEN_MESSAGES, "book": book})).install(monkeypatch)
    routes = {
        "/AssetPairs": Reply(fixture("ccxt/kraken_asset_pairs.json")),
        "/Assets": Reply(fixture("ccxt/kraken_assets.json")),
    }
    provider = streaming("kraken", routes, ("BTC/USD",), stall_s=5.0, book_depth=10)

    def done(records: Records) -> bool:
        return has_quotes_and_trades(3)(records) and len(books(records)) == len(book)

    records = await run_provider_until(provider, done, limit_s=15.0)
    [socket] = venue.sockets
    requests = [(r["params"]["channel"], r["params"].get("depth")) for r in socket.sent]
    assert ("book", 100) in requests
    events = books(records)
    assert events[0].kind == SNAPSHOT
    assert {(e.symbol, e.provider) for e in events} == {("BTC/USD", "ccxt:kraken")}
    assert all(e.checksum is not None for e in events)
    consolidated = SymbolBooks("BTC/USD", depth=10)
    assert {consolidated.apply(e).outcome for e in events} == {Outcome.APPLIED}
    assert [s.state for s in statuses(records)] == ["UP"]


async def test_a_wrong_kraken_checksum_reconnects_for_a_fresh_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Derived: the recorded checksum of the second update plus one. Kraken cannot
    unsubscribe one book in ccxt, so the session reconnects and gets a snapshot again."""
    book = copy.deepcopy(recorded("kraken_watchOrderBook.json")["watchOrderBook"][1]["messages"])
    book[4]["data"][0]["checksum"] += 1
    venue = RecordedVenue(kraken_answer({**KRAKEN_MESSAGES, "book": book[2:7]}))
    venue.install(monkeypatch)
    routes = {
        "/AssetPairs": Reply(fixture("ccxt/kraken_asset_pairs.json")),
        "/Assets": Reply(fixture("ccxt/kraken_assets.json")),
    }
    provider = streaming("kraken", routes, ("BTC/USD",), stall_s=5.0, book_depth=10)

    def snapshot_again(records: Records) -> bool:
        return [e.kind for e in books(records)].count(SNAPSHOT) >= 2

    records = await run_provider_until(provider, snapshot_again, limit_s=20.0)
    assert len(venue.sockets) >= 2
    kinds = [(s.state, s.error_kind) for s in failures(records)]
    assert kinds[:2] == [("DEGRADED", "book_checksum"), ("DOWN", "network")]
    consolidated = SymbolBooks("BTC/USD", depth=10)
    outcomes = [consolidated.apply(e).outcome for e in books(records)]
    assert Outcome.CHECKSUM in outcomes and outcomes[-1] is Outcome.APPLIED
    assert consolidated.fresh() == ["ccxt:kraken"]


def books(records: Records) -> list[BookEvent]:
    return [r for r in records if isinstance(r, BookEvent)]


async def test_a_stream_that_stops_sending_times_out_and_reconnects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = RecordedVenue(binance_answer(BINANCE_STREAMS)).install(monkeypatch)
    provider = streaming("binance", binance_routes(), ("BTC/USDT",), stall_s=0.5)
    records = await run_provider_until(provider, lambda r: len(failures(r)) >= 2)
    assert [(s.state, s.error_kind) for s in statuses(records)] == [
        ("UP", None),
        ("DOWN", "timeout"),
        ("UP", None),
        ("DOWN", "timeout"),
    ]
    down = failures(records)
    assert down[0].message == (
        "TimeoutError: the stream sent nothing for 0.5 s; " + expected_delay(NETWORK, 0)
    )
    rng = random.Random(SEED)
    rng.random()  # the first failure's jitter
    assert down[1].message.endswith(f"retrying in {NETWORK.delay(0, rng):.1f} s")  # UP reset it
    assert len(venue.sockets) == 4 and all(socket.closed for socket in venue.sockets)
    trade_ids = [t.trade_id for t in ticks(records, "TRADE")]
    assert trade_ids == ["5503456702", "5503456703"]  # the replayed trades are not repeated


async def test_a_malformed_frame_stops_the_stream_and_it_is_reconnected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = '{"e": "24hrTicker", "E": 1764151201500, "s": "BTCUSDT", "c": '
    venue = RecordedVenue(binance_answer(BINANCE_STREAMS, extra=(broken,))).install(monkeypatch)
    provider = streaming("binance", binance_routes(), ("BTC/USDT",), stall_s=0.5)
    records = await run_provider_until(provider, lambda r: len(failures(r)) >= 2)
    assert [(s.state, s.error_kind) for s in failures(records)] == [("DOWN", "timeout")] * 2
    assert [t.price for t in ticks(records, "QUOTE")] == [90500.01, 90500.01]
    assert len(venue.sockets) == 4
