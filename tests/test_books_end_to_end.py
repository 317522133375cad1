"""Order books on the real broker: book events of two synthetic venues go through the book
agent (``fiml arbitrate``, its own process) to ``books.consolidated`` and the gateway, and a
WebSocket client rebuilds the consolidated book, with each venue's sizes, verifying every
``seq`` and checksum; ``GET /v1/books/{symbol}`` serves the same book; a replay of a range
rebuilds the very books the agent wrote for it, and one without ``end`` hands over to the
live books, ``seq`` and checksum unbroken. A record in ``books.raw`` that is not a book
event is skipped."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import websockets

from domain.books.protocol import ClientBook
from ingest.books.synthetic_books import SyntheticBooks
from ingest.synthetic import SyntheticMarket
from ingest.venues import DEFAULT_VENUES
from runtime.book_replay import BookReplay
from runtime.clock import now_micros
from runtime.processes import stop_process
from runtime.replay_request import ReplayError, ReplayRequest
from runtime.settings import Settings
from runtime.testing import free_port
from schemas.books import BookEvent, ConsolidatedBook
from schemas.times import micros_to_iso
from tests.support import poll_until, service_env, spawn
from tests.support_gateway import receive, serve_gateway
from tests.support_kafka import Entry, produce, read_topic

SYMBOL = "BTC/USDT"
VENUES = DEFAULT_VENUES[:2]
STEP_US = 100_000


class Venues:
    """Book events of two synthetic venues for BTC/USDT, ten steps a second from ``start``."""

    def __init__(self, start: int) -> None:
        self.market = SyntheticMarket([SYMBOL], seed=21, tick_hz=10)
        self.books = SyntheticBooks(VENUES, seed=21, depth=50)
        self.now = start

    def steps(self, count: int) -> list[BookEvent]:
        events = []
        for _ in range(count):
            self.now += STEP_US
            self.market.advance(self.now)
            events.extend(self.books.advance(self.now, self.market.prices))
        return events


async def write(settings: Settings, events: list[BookEvent]) -> None:
    await produce(settings, "books.raw", events, written_ms=lambda e: e.ts_ingest // 1000)


def as_decimals(side: list) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(level[0]), Decimal(level[1])) for level in side]


async def replayed(settings: Settings, start: int, end: int) -> list[dict]:
    """The items of an orderbook replay of BTC/USDT from ``start`` to ``end`` at speed 20."""
    items = []
    async with websockets.connect(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream") as ws:
        request = {
            "type": "subscribe",
            "stream_type": "orderbook",
            "symbols": [SYMBOL],
            "depth": 10,
            "interval_ms": 100,
            "start": micros_to_iso(start),
            "end": micros_to_iso(end),
            "speed": 20,
        }
        await ws.send(json.dumps(request))
        await receive(ws, "subscription_ack")
        async with asyncio.timeout(30):
            while (message := json.loads(await ws.recv()))["type"] != "replay_complete":
                if message["type"] == "data":
                    assert message["replay"] is True
                    items.extend(message["data"])
                else:
                    assert message["type"] == "heartbeat", message
    return items


async def check_replay(settings: Settings, start: int, end: int) -> None:
    """A replayed range rebuilds, item by item with every seq and checksum verified, the
    consolidated books the agent wrote for the same offsets, up to its last one in range."""
    written = [
        book
        for _, _, book in await read_topic(settings, "books.consolidated", ConsolidatedBook)
        if book.symbol == SYMBOL and start <= book.ts_event <= end
    ]
    assert len(written) >= 10
    items = await replayed(settings, start, end)
    assert items, "no book replayed"
    client, at = ClientBook(), 0
    for item in items:
        client.apply(item)  # raises on a seq gap or checksum mismatch
        while micros_to_iso(written[at].ts_event) != item["timestamp"]:
            at += 1  # books that change nothing in the top 10 send nothing
        bids, asks = client.levels()
        assert as_decimals(bids) == as_decimals(written[at].bids[:10])
        assert as_decimals(asks) == as_decimals(written[at].asks[:10])
        assert client.venues == written[at].venues
    assert items[0]["action"] == "snapshot" and items[0]["seq"] == 1
    assert [item["action"] for item in items[1:]].count("delta") >= 5
    assert at == len(written) - 1, "the replay ended before the agent's last book in range"


async def check_handover(settings: Settings, start: int, venues: Venues) -> None:
    """A replay without ``end`` sends the replayed books, then (without ``replay``) the live
    ones of what is written after it started, all rebuilt by one client with every seq and
    checksum verified, each equal to the book the agent wrote with the same timestamp."""
    flags: list[bool] = []
    client, rebuilt = ClientBook(), []

    async def keep_writing() -> None:
        while True:
            await write(settings, venues.steps(5))
            await asyncio.sleep(0.3)

    writer = asyncio.create_task(keep_writing())
    try:
        async with websockets.connect(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream") as ws:
            request = {
                "type": "subscribe",
                "stream_type": "orderbook",
                "symbols": [SYMBOL],
                "depth": 10,
                "start": micros_to_iso(start),
                "speed": 0,
            }
            await ws.send(json.dumps(request))
            await receive(ws, "subscription_ack")
            while flags.count(False) < 5:
                message = await receive(ws, "data", within=20)
                for item in message["data"]:
                    client.apply(item)  # raises on a seq gap or checksum mismatch
                    bids, asks = client.levels()
                    rebuilt.append((item["timestamp"], as_decimals(bids), as_decimals(asks)))
                    flags.append(message.get("replay", False))
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    assert flags[0] is True and flags.index(False) > 5, "no replayed books before live ones"
    assert all(flags[: flags.index(False)]) and not any(flags[flags.index(False) :])
    last = rebuilt[-1][0]

    async def written() -> dict[str, ConsolidatedBook]:
        records = await read_topic(settings, "books.consolidated", ConsolidatedBook)
        return {micros_to_iso(b.ts_event): b for _, _, b in records if b.symbol == SYMBOL}

    await poll_until(lambda: _has(written(), last), within=20)
    books = await written()
    for timestamp, bids, asks in rebuilt:
        book = books[timestamp]
        assert (bids, asks) == (as_decimals(book.bids[:10]), as_decimals(book.asks[:10]))


async def _has(books: Awaitable[dict[str, ConsolidatedBook]], timestamp: str) -> bool:
    return timestamp in await books


async def test_a_client_rebuilds_the_consolidated_book_of_two_venues(
    topics: Settings, tmp_path: Path
) -> None:
    settings = dataclasses.replace(
        topics, gateway_port=free_port(), book_snapshot_ms=250, max_history_scan_records=1000
    )
    worker = spawn(["arbitrate"], service_env(settings), tmp_path / "arbitrate.log")
    venues = Venues(now_micros() - 10_000_000)
    replay_start = venues.now + 1_500_000  # after the first books: the fold starts before it
    try:
        async with serve_gateway(settings) as app:
            events = venues.steps(30)
            poison = Entry(b"not a book event", SYMBOL.encode(), None, events[0].ts_ingest // 1000)
            await produce(settings, "books.raw", [poison])  # skipped and counted by the agent
            await write(settings, events)
            store = app.state.market.books
            await poll_until(
                lambda: SYMBOL in store.books and len(store.books[SYMBOL].venues) == 2, within=60
            )
            client, actions = ClientBook(), []
            async with websockets.connect(
                f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
            ) as ws:
                request = {
                    "type": "subscribe",
                    "stream_type": "orderbook",
                    "symbols": [SYMBOL],
                    "depth": 10,
                    "interval_ms": 100,
                }
                await ws.send(json.dumps(request))
                ack = await receive(ws, "subscription_ack")
                assert (ack["depth"], ack["venue"]) == (10, "consolidated")
                for _ in range(6):
                    await write(settings, venues.steps(5))
                    await asyncio.sleep(0.3)
                latest = venues.now - 1_000_000  # a book the agent has flushed by now
                async with asyncio.timeout(30):
                    while True:
                        message = await receive(ws, "data")
                        for item in message["data"]:
                            client.apply(item)  # raises on a seq gap or checksum mismatch
                            actions.append(item["action"])
                        book = store.books[SYMBOL]
                        bids, asks = client.levels()
                        if book.ts_event >= latest and as_decimals(bids) == as_decimals(
                            book.bids[:10]
                        ):
                            break
            assert as_decimals(asks) == as_decimals(book.asks[:10])
            assert actions[0] == "snapshot" and "delta" in actions
            assert client.venues == [venue.name for venue in VENUES]
            for index in range(2):
                assert any(level[2][index] for level in bids + asks), "a venue without sizes"
            for level in bids + asks:
                sizes = [Decimal(size) for size in level[2] if size]
                assert sum(sizes) == Decimal(level[1])
            async with httpx.AsyncClient() as http:
                answer = await http.get(
                    f"http://127.0.0.1:{settings.gateway_port}/v1/books/BTC/USDT",
                    params={"depth": 10},
                )
            assert answer.status_code == 200, answer.text
            served = answer.json()
            async with httpx.AsyncClient() as http:
                base = f"http://127.0.0.1:{settings.gateway_port}/v1/books"
                assert (await http.get(f"{base}/ETH/USDT")).status_code == 404
                assert (await http.get(f"{base}/BTC/USDT", params={"depth": 7})).status_code == 422
            assert served["action"] == "snapshot" and served["venues"] == client.venues
            assert as_decimals(served["bids"]) == as_decimals(store.books[SYMBOL].bids[:10])
            await check_replay(settings, replay_start, latest)  # under the scan cap
            request = ReplayRequest("books", (SYMBOL,), replay_start, latest)
            with pytest.raises(ReplayError, match="more than the 50 one request may read"):
                async with BookReplay(settings, request, scan_limit=50):
                    pass  # the fold would start at the first retained record: refused
            await check_handover(settings, replay_start, venues)
    finally:
        stop_process(worker)
    log = (tmp_path / "arbitrate.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
