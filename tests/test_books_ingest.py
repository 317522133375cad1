"""Order book ingest on recorded venue payloads, through ccxt.pro's own decoding and parsing.

Each venue's recorded frames go to ccxt's WebSocket client (``handle_text_or_binary_message``:
ccxt decodes the text and routes it to the exchange's handler, as for a live frame), with the
:class:`BookTap` installed on the exchange. The events it emits must rebuild ccxt's own book,
pass the venue's checksums, and, on a gap or a checksum mismatch, come with a status and a
resync request, while every reader of the events finds the book invalid until a snapshot.
Derived frames (a gap, a wrong checksum) say how they were derived.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterable
from typing import Any

import ccxt.async_support
import ccxt.pro
import pytest
from ccxt.base.errors import ChecksumError, InvalidNonce

from domain.books.consolidated import SymbolBooks
from domain.books.venue_book import Outcome
from ingest.books.frames import book_event, ccxt_book, iso_micros
from ingest.books.tap import BookTap
from schemas.books import DELTA, SNAPSHOT, BookEvent
from schemas.records import ProviderStatus
from tests.ccxt_http import RecordedSession, Reply, fixture
from tests.ccxt_ws import RecordedVenue
from tests.support_books import (
    connected_client,
    recorded,
    recorded_frames,
    spot_market,
    ticking_clock,
)

KRAKEN = recorded("kraken_watchOrderBook.json")["watchOrderBook"]
OKX_FRAMES = recorded_frames("okx_books_BTC-USDT.jsonl")
BINANCE_FRAMES = recorded_frames("binance_spot_NKNUSDT_ws_depthUpdate.jsonl")
BINANCE_REST = recorded("binance_spot_NKNUSDT_rest_depth_limit1000.json")
KRAKEN_MARKETS = [
    spot_market("BTC/USD", "XXBTZUSD", 0.1, 1e-8),
    spot_market("DOGE/USDT", "XDGUSDT", 1e-5, 1e-8),
]


def events(records: Iterable[BookEvent | ProviderStatus]) -> list[BookEvent]:
    return [record for record in records if isinstance(record, BookEvent)]


def statuses(records: Iterable[BookEvent | ProviderStatus]) -> list[ProviderStatus]:
    return [record for record in records if isinstance(record, ProviderStatus)]


def floats(levels: list[tuple[str, str]]) -> list[list[float]]:
    return [[float(price), float(size)] for price, size in levels]


def outcomes(books: SymbolBooks, records: Iterable[BookEvent]) -> list[Outcome]:
    return [books.apply(event).outcome for event in records]


def kraken_tap() -> tuple[Any, BookTap, Any]:
    exchange = ccxt.pro.kraken()
    exchange.set_markets(KRAKEN_MARKETS)
    tap = BookTap(
        exchange, {"BTC/USD": "BTC/USD", "DOGE/USDT": "DOGE/USDT"}, clock=ticking_clock(), window=10
    )
    tap.install()
    client = exchange.client(exchange.urls["api"]["ws"]["publicV2"])
    return exchange, tap, client


def feed(client: Any, messages: Iterable[Any]) -> None:
    for message in messages:
        client.handle_text_or_binary_message(
            message if isinstance(message, str) else json.dumps(message)
        )


@pytest.mark.parametrize("entry", KRAKEN, ids=[entry["description"] for entry in KRAKEN])
async def test_kraken_frames_become_events_that_pass_krakens_checksums(entry: dict) -> None:
    exchange, tap, client = kraken_tap()
    symbol = entry["input"][0]
    client.subscriptions[f"orderbook@{symbol}"] = {"limit": entry["input"][1]}
    feed(client, entry["messages"])
    records = tap.drain()
    books = SymbolBooks(symbol)
    book_frames = [m for m in entry["messages"] if m.get("channel") == "book"]
    assert [e.kind for e in events(records)] == [
        SNAPSHOT if m["type"] == "snapshot" else DELTA for m in book_frames
    ]
    assert [e.checksum for e in events(records)] == [
        m["data"][0].get("checksum") for m in book_frames
    ]
    assert set(outcomes(books, events(records))) == {Outcome.APPLIED}
    assert statuses(records) == [] and tap.resync == set()
    ids = [e.last_update_id for e in events(records)]
    assert ids == list(range(1, len(ids) + 1))  # the tap's own numbering, across snapshots
    bids, asks = books.venues["ccxt:kraken"].top(10)
    if "parsedResponse" in entry:  # ccxt's expected final book
        expected = entry["parsedResponse"]
    else:  # ccxt's expected first resolution: the snapshot alone
        expected = {
            "bids": floats(events(records)[0].bids),
            "asks": floats(events(records)[0].asks),
        }
        assert expected == {key: entry["parsedResponses"][0][key] for key in ("bids", "asks")}
        expected = exchange.orderbooks[symbol]
    assert (floats(bids), floats(asks)) == (expected["bids"], expected["asks"])
    assert (floats(bids), floats(asks)) == (
        exchange.orderbooks[symbol]["bids"],
        exchange.orderbooks[symbol]["asks"],
    )
    await exchange.close()


async def test_kraken_levels_are_written_at_the_pairs_precision() -> None:
    """Kraken sends numbers (5.1e-05); the checksum needs them at 8 decimals."""
    exchange, tap, client = kraken_tap()
    feed(client, KRAKEN[0]["messages"])
    first = events(tap.drain())[0]
    assert first.bids[1] == ["63298.7", "0.00005100"]
    assert first.ts_event == iso_micros("2026-08-12T19:28:08.631028Z")  # the frame's time
    await exchange.close()


async def test_kraken_through_ccxts_watch_on_recorded_markets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole watch: ccxt loads the recorded AssetPairs, subscribes, receives the frames."""
    entry = KRAKEN[1]
    venue = RecordedVenue(lambda request: [json.dumps(m) for m in entry["messages"][1:]])
    venue.install(monkeypatch)
    exchange = ccxt.pro.kraken()
    exchange.session = RecordedSession(
        {
            "/AssetPairs": Reply(fixture("ccxt/kraken_asset_pairs.json")),
            "/Assets": Reply(fixture("ccxt/kraken_assets.json")),
        }
    )
    tap = BookTap(exchange, {"BTC/USD": "BTC/USD"}, clock=ticking_clock(), window=10)
    tap.install()
    await asyncio.wait_for(exchange.watch_order_book("BTC/USD", 10), 5)
    for _ in range(50):
        if len(tap.pending) == 9:
            break
        await asyncio.sleep(0.01)
    records = tap.drain()
    books = SymbolBooks("BTC/USD")
    assert len(events(records)) == 9
    assert set(outcomes(books, events(records))) == {Outcome.APPLIED}
    assert floats(books.venues["ccxt:kraken"].top(10)[0]) == entry["parsedResponse"]["bids"]
    assert venue.sockets[0].sent[0]["params"] == {
        "channel": "book",
        "symbol": ["BTC/USD"],
        "depth": 10,
    }
    await exchange.close()


async def test_a_wrong_kraken_checksum_invalidates_the_book_until_the_next_snapshot() -> None:
    """Derived: the recorded checksum of the second update plus one. ccxt does not check
    Kraken's checksums; the tap does, asks for a resync, and every reader drops the book."""
    exchange, tap, client = kraken_tap()
    entry = KRAKEN[1]
    client.subscriptions["orderbook@BTC/USD"] = {"limit": 10}
    messages = copy.deepcopy(entry["messages"])
    messages[4]["data"][0]["checksum"] += 1
    feed(client, messages[:7])
    records = tap.drain()
    assert [e.kind for e in events(records)] == [SNAPSHOT, DELTA, DELTA]  # 2 more dropped
    [status] = statuses(records)
    assert (status.state, status.error_kind, status.feed) == ("DEGRADED", "book_checksum", "books")
    assert status.message.startswith("BTC/USD: kraken checksum")
    assert tap.resync == {"BTC/USD"}
    assert "BTC/USD" in exchange.orderbooks  # ccxt kept its book
    books = SymbolBooks("BTC/USD")
    assert outcomes(books, events(records)) == [Outcome.APPLIED, Outcome.APPLIED, Outcome.CHECKSUM]
    assert books.fresh() == [] and books.consolidated(3).bids == []
    feed(client, messages[7:])  # the venue's next snapshot, then its updates
    records = tap.drain()
    assert tap.resync == set() and statuses(records) == []
    assert set(outcomes(books, events(records))) == {Outcome.APPLIED}
    assert books.fresh() == ["ccxt:kraken"]
    await exchange.close()


def okx_tap() -> tuple[Any, BookTap, Any]:
    exchange = ccxt.pro.okx()
    exchange.set_markets([spot_market("BTC/USDT", "BTC-USDT", 0.1, 1e-8)])
    tap = BookTap(exchange, {"BTC/USDT": "BTC/USDT"}, clock=ticking_clock())
    tap.install()
    client = exchange.client("wss://ws.okx.com:8443/ws/v5/public")
    client.subscriptions["books:BTC/USDT"] = True  # what ccxt's watch stores
    return exchange, tap, client


async def test_okx_books_frames_keep_okxs_strings_and_pass_its_checksums() -> None:
    exchange, tap, client = okx_tap()
    feed(client, OKX_FRAMES)
    records = tap.drain()
    assert [e.kind for e in events(records)] == [SNAPSHOT] + [DELTA] * 97
    assert all(e.checksum is not None for e in events(records))
    books = SymbolBooks("BTC/USDT")
    assert set(outcomes(books, events(records))) == {Outcome.APPLIED}
    snapshot = events(records)[0]
    assert snapshot.depth == 400 and ["30244", "0.08"] in snapshot.asks  # OKX's own text
    bids, asks = books.venues["ccxt:okx"].top(50)
    ccxt_book_now = exchange.orderbooks["BTC/USDT"]
    assert floats(bids) == [level[:2] for level in ccxt_book_now["bids"][:50]]
    assert floats(asks) == [level[:2] for level in ccxt_book_now["asks"][:50]]
    await exchange.close()


async def test_a_wrong_okx_checksum_is_caught_by_the_tap_though_ccxt_ignores_it() -> None:
    """Derived: the recorded checksum of the first update plus one."""
    exchange, tap, client = okx_tap()
    update = json.loads(OKX_FRAMES[2])
    update["data"][0]["checksum"] += 1
    feed(client, [OKX_FRAMES[1]])
    future = client.future("books:BTC/USDT")
    feed(client, [update])
    assert future.done() and future.exception() is None  # ccxt applies it: it never checks
    assert "BTC/USDT" in exchange.orderbooks
    records = tap.drain()
    assert [s.error_kind for s in statuses(records)] == ["book_checksum"]
    books = SymbolBooks("BTC/USDT")
    assert outcomes(books, events(records)) == [Outcome.APPLIED, Outcome.CHECKSUM]
    await exchange.close()


async def test_an_okx_sequence_gap_fails_in_ccxt_and_in_every_reader() -> None:
    """Derived: seqId/prevSeqId (sent since 2023) added to the recorded 2022 frames, the
    second update claiming to follow seqId 103 where the book is at 101."""
    exchange, tap, client = okx_tap()
    frames = [json.loads(text) for text in OKX_FRAMES[1:4]]
    for frame, (seq, previous) in zip(frames, [(100, -1), (101, 100), (105, 103)], strict=True):
        frame["data"][0].update(seqId=seq, prevSeqId=previous)
    feed(client, frames[:2])
    future = client.future("books:BTC/USDT")
    feed(client, frames[2:])
    with pytest.raises(InvalidNonce):
        future.result()
    records = tap.drain()
    assert [(e.last_update_id, e.prev_update_id) for e in events(records)] == [
        (100, None),
        (101, 100),
        (105, 103),
    ]
    [status] = statuses(records)
    assert status.error_kind == "book_gap" and tap.resync == {"BTC/USDT"}
    books = SymbolBooks("BTC/USDT")
    assert outcomes(books, events(records)) == [Outcome.APPLIED, Outcome.APPLIED, Outcome.GAP]
    assert books.venues["ccxt:okx"].top(50) == ([], [])
    await exchange.close()


async def test_a_message_the_tap_cannot_read_sends_every_book_to_a_snapshot() -> None:
    """Derived: a recorded OKX update without its ``ts`` (ccxt copes, the tap cannot)."""
    exchange, tap, client = okx_tap()
    unreadable = json.loads(OKX_FRAMES[2])
    del unreadable["data"][0]["ts"]
    feed(client, [OKX_FRAMES[1], unreadable, OKX_FRAMES[3]])
    records = tap.drain()
    assert [e.kind for e in events(records)] == [SNAPSHOT]  # the next update waits
    [status] = statuses(records)
    assert status.error_kind == "book_unreadable" and "KeyError('ts')" in status.message
    assert status.feed == "books"
    assert tap.resync == {"BTC/USDT"}
    feed(client, [OKX_FRAMES[1]])  # a fresh snapshot
    assert [e.kind for e in events(tap.drain())] == [SNAPSHOT] and tap.resync == set()
    await exchange.close()


async def test_okx_books5_pushes_are_snapshots() -> None:
    entry = recorded("okx_watchOrderBook_books5.json")["watchOrderBook"][1]
    exchange, tap, client = okx_tap()
    client.subscriptions["books5:BTC/USDT"] = True
    books = SymbolBooks("BTC/USDT")
    for message, expected in zip(entry["messages"][1:], entry["parsedResponses"], strict=True):
        feed(client, [message])
        [event] = events(tap.drain())
        assert (event.kind, event.depth) == (SNAPSHOT, 5)
        assert books.apply(event).outcome is Outcome.APPLIED
        bids, asks = books.venues["ccxt:okx"].top(5)
        assert floats(bids) == [level[:2] for level in expected["bids"]]
        assert floats(asks) == [level[:2] for level in expected["asks"]]
    await exchange.close()


async def binance_session(frames: list[str]) -> tuple[Any, BookTap, list[Any]]:
    """ccxt's Binance watch on the recorded session: the REST snapshot through ccxt's own
    ``fetch_order_book`` (the transport stubbed), then ``frames``; the watch results too."""
    exchange = ccxt.pro.binance()
    exchange.set_markets([spot_market("NKN/USDT", "NKNUSDT", 1e-4, 0.1)])

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        return copy.deepcopy(BINANCE_REST)

    exchange.fetch = fetch
    tap = BookTap(exchange, {"NKN/USDT": "NKN/USDT"}, clock=ticking_clock(), window=1000)
    tap.install()
    client = connected_client(exchange, "wss://stream.binance.com:9443/ws/0")
    watch = asyncio.ensure_future(exchange.watch_order_book("NKN/USDT", 1000))
    await asyncio.sleep(0.01)
    feed(client, [{"result": None, "id": client.connection.sent[0]["id"]}])
    tap.take_book("NKN/USDT", await asyncio.wait_for(watch, 2))
    results = []
    for frame in frames:
        watch = asyncio.ensure_future(exchange.watch_order_book("NKN/USDT", 1000))
        await asyncio.sleep(0)
        feed(client, [frame])
        await asyncio.wait({watch}, timeout=0.05)
        results.append(watch.exception() if watch.done() else None)
        watch.cancel()
    return exchange, tap, results


async def test_binance_snapshot_by_rest_then_the_recorded_depth_updates() -> None:
    exchange, tap, _ = await binance_session(BINANCE_FRAMES)
    records = tap.drain()
    assert statuses(records) == []
    snapshot, *deltas = events(records)
    assert (snapshot.kind, snapshot.last_update_id, snapshot.depth) == (SNAPSHOT, 499869752, 1000)
    assert len(deltas) == 149  # the first frame (u 499869752) is not newer than the snapshot
    assert (deltas[0].first_update_id, deltas[-1].last_update_id) == (499869753, 499870179)
    books = SymbolBooks("NKN/USDT")
    assert set(outcomes(books, events(records))) == {Outcome.APPLIED}
    bids, asks = books.venues["ccxt:binance"].top(50)
    book = exchange.orderbooks["NKN/USDT"]
    assert (floats(bids), floats(asks)) == (book["bids"][:50], book["asks"][:50])
    assert book["nonce"] == 499870179
    await exchange.close()


async def test_a_lost_binance_frame_is_a_gap_for_ccxt_and_every_reader() -> None:
    """Derived: the recorded session with frame 10 left out."""
    frames = BINANCE_FRAMES[:10] + BINANCE_FRAMES[11:20]
    exchange, tap, results = await binance_session(frames)
    assert isinstance(results[10], ChecksumError)  # ccxt rejects the watch at the next frame
    records = tap.drain()
    [status] = statuses(records)
    assert (status.error_kind, tap.resync) == ("book_gap", {"NKN/USDT"})
    deltas = events(records)[1:]
    assert len(deltas) == 10  # 8 applied and the gap; later frames wait for a snapshot
    books = SymbolBooks("NKN/USDT")
    assert outcomes(books, events(records))[-1] is Outcome.GAP
    assert books.fresh() == []
    await exchange.close()


def coinbase_tap() -> tuple[Any, BookTap, Any]:
    exchange = ccxt.pro.coinbase()
    exchange.set_markets([spot_market("BTC/USD", "BTC-USD", 0.01, 1e-8)])
    tap = BookTap(exchange, {"BTC/USD": "BTC/USD"}, clock=ticking_clock())
    tap.install()
    client = exchange.client(exchange.urls["api"]["ws"])
    client.subscriptions["level2::BTC/USD"] = True
    return exchange, tap, client


def coinbase_update(number: int, quantity: str) -> dict:
    """Derived from the docs example: an update of its first bid level, numbered ``number``."""
    return {
        "channel": "l2_data",
        "client_id": "",
        "timestamp": "2023-02-09T20:32:51.000000000Z",
        "sequence_num": number,
        "events": [
            {
                "type": "update",
                "product_id": "BTC-USD",
                "updates": [
                    {
                        "side": "bid",
                        "event_time": "2023-02-09T20:32:50.9Z",
                        "price_level": "21921.74",
                        "new_quantity": quantity,
                    }
                ],
            }
        ],
    }


async def test_coinbase_docs_example_snapshot_and_numbered_updates() -> None:
    exchange, tap, client = coinbase_tap()
    example = recorded("coinbase_advanced_l2_data_docs_example.json")["message"]
    heartbeat = {"channel": "heartbeats", "sequence_num": 1, "events": []}
    feed(client, [example, heartbeat, coinbase_update(2, "0.5")])
    records = tap.drain()
    snapshot, update = events(records)
    assert (snapshot.kind, snapshot.bids, snapshot.asks) == (
        SNAPSHOT,
        [["21921.74", "0.06317902"], ["21921.3", "0.02"]],
        [],
    )
    assert snapshot.ts_event == iso_micros("2023-02-09T20:32:50.714964Z")
    # the heartbeat took number 1: the update follows the snapshot all the same
    assert (update.first_update_id, update.last_update_id) == (1, 2)
    books = SymbolBooks("BTC/USD")
    assert outcomes(books, events(records)) == [Outcome.APPLIED, Outcome.APPLIED]
    assert books.consolidated(2).bids[0] == ["21921.74", "0.5", "0.5"]
    await exchange.close()


async def test_a_coinbase_sequence_jump_is_a_gap_that_ccxt_ignores() -> None:
    exchange, tap, client = coinbase_tap()
    feed(client, [recorded("coinbase_advanced_l2_data_docs_example.json")["message"]])
    future = client.future("level2::BTC/USD")
    feed(client, [coinbase_update(7, "0")])  # numbers 1 to 6 never arrived
    assert future.done() and future.exception() is None  # ccxt applies it anyway
    records = tap.drain()
    assert [s.error_kind for s in statuses(records)] == ["book_gap"]
    books = SymbolBooks("BTC/USD")
    assert outcomes(books, events(records)) == [Outcome.APPLIED, Outcome.GAP]
    await exchange.close()


async def test_rest_order_books_through_ccxts_fetch_order_book() -> None:
    """REST polling: ccxt's own request and parse of the recorded bodies, the transport
    stubbed, then one snapshot event each."""
    binance = ccxt.async_support.binance()
    binance.set_markets([spot_market("NKN/USDT", "NKNUSDT", 1e-4, 0.1)])
    binance.session = RecordedSession({"/api/v3/depth": Reply(json.dumps(BINANCE_REST))})
    book = await binance.fetch_order_book("NKN/USDT", 100)
    assert "limit=100" in binance.session.requests[0]
    event = book_event(ccxt_book("NKN/USDT", book, 100), "NKN/USDT", "ccxt:binance", 5)
    assert (event.kind, event.last_update_id, event.depth, event.ts_event) == (
        SNAPSHOT,
        499869752,
        100,
        5,
    )
    # BINANCE_REST's first levels, ["0.35210000", "672.00000000"] and ["0.35250000", ...]
    assert (event.bids[0], event.asks[0]) == (["0.3521", "672"], ["0.3525", "3959"])
    books = SymbolBooks("NKN/USDT")
    assert books.apply(event).outcome is Outcome.APPLIED
    assert books.venues["ccxt:binance"].bids.horizon is not None  # 1000 levels: partial
    kraken = ccxt.async_support.kraken()
    kraken.set_markets([{**spot_market("BTC/USDT", "XBTUSDT", 0.1, 1e-8), "altname": "XBTUSDT"}])
    kraken.session = RecordedSession(
        {"/Depth": Reply(fixture("books/kraken_Depth_XBTUSDT_nautilus.json"))}
    )
    book = await kraken.fetch_order_book("BTC/USDT")
    event = book_event(ccxt_book("BTC/USDT", book, None, (1, 8)), "BTC/USDT", "ccxt:kraken", 5)
    assert event.bids[0] == ["105944.2", "0.00200000"]  # rows [price, volume, time]: time dropped
    await binance.close()
    await kraken.close()
