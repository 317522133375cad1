"""WebSocket replay on a real server and the real broker: ranges, pace, hand-over, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import socket
import time

import jsonschema
import pytest
import websockets
from aiokafka.structs import ConsumerRecord

from gateway.replaying import Encoded
from runtime.replay import Replay, Replayed
from runtime.testing import free_port
from schemas import Trade
from schemas.times import micros_to_iso
from tests.factories import BASE_US, MS, quote, replay_trade, second_candle
from tests.support import poll_until
from tests.support_gateway import fetch_document, receive, serve_gateway
from tests.support_kafka import Entry, expire_oldest, ingest_ms, produce, read_topic


def iso(micros: int) -> str:
    return micros_to_iso(micros)


async def subscribe_replay(ws, **fields) -> None:
    message = {
        "type": "subscribe",
        "stream_type": "trades",
        "symbols": ["ETH/USDT", "AAPL"],
        **fields,
    }
    await ws.send(json.dumps(message))


async def skip_to(ws, kind: str, within: float = 10.0) -> dict:
    """The next message of type ``kind``, skipping any other (data of a running replay)."""
    async with asyncio.timeout(within):
        while (message := json.loads(await ws.recv()))["type"] != kind:
            pass
    return message


async def until_complete(ws, within: float = 20.0) -> tuple[list[dict], dict]:
    """Data messages of a replay, then its replay_complete."""
    messages = []
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "replay_complete":
                return messages, message
            if message["type"] == "data":
                messages.append(message)


async def test_a_replay_with_end_sends_exactly_the_topics_records_in_order(gateway):
    settings, port, app = gateway
    await produce(settings, "trades", [replay_trade(n) for n in range(300)], written_ms=ingest_ms)
    stored = await read_topic(settings, "trades", Trade)
    start, end = BASE_US + 20 * MS, BASE_US + 250 * MS
    want = [
        r
        for _, _, r in sorted(stored, key=lambda row: (row[2].ts_event, row[0], row[1]))
        if r.symbol in {"ETH/USDT", "AAPL"} and start <= r.ts_event <= end
    ]
    document = await fetch_document(port)
    components = document["components"]
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe_replay(ws, start=iso(start), end=iso(end), speed=0, interval_ms=100)
        ack = await receive(ws, "subscription_ack")
        assert ack["start"] == iso(start) and ack["end"] == iso(end) and ack["speed"] == 0
        messages, complete = await until_complete(ws)
        summary = app.state.registry.summary()
    items = [item for message in messages for item in message["data"]]
    assert [(i["id"], i["symbol"], i["timestamp"]) for i in items] == [
        (r.trade_id, r.symbol, iso(r.ts_event)) for r in want
    ]
    assert len(items) == 116
    assert all(message["replay"] is True for message in messages)
    assert [message["seq"] for message in messages] == list(range(1, len(messages) + 1))
    assert complete["subscription_id"] == ack["subscription_id"]
    assert complete["start"] == iso(start) and complete["end"] == iso(end)
    assert summary["total_subscriptions"] == 0
    for frame in (ack, messages[0], complete):
        schema = {**components["messages"][frame["type"]]["payload"], "components": components}
        jsonschema.validate(frame, schema, cls=jsonschema.Draft202012Validator)


async def test_speed_ten_takes_about_a_tenth_of_the_range(gateway):
    settings, port, _ = gateway
    await produce(
        settings, "trades", [replay_trade(n * 50) for n in range(61)], written_ms=ingest_ms
    )
    start, end = BASE_US, BASE_US + 3000 * MS
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe_replay(
            ws,
            symbols=["ETH/USDT", "BTC/USDT", "AAPL", "MSFT"],
            start=iso(start),
            end=iso(end),
            speed=10,
            interval_ms=100,
        )
        await receive(ws, "subscription_ack")
        began = time.monotonic()
        messages, _ = await until_complete(ws)
        elapsed = time.monotonic() - began
    assert 0.25 <= elapsed <= 1.5, elapsed
    assert len(messages) >= 2
    assert sum(len(message["data"]) for message in messages) == 61


async def test_the_replay_clock_starts_with_the_first_records_read(gateway, monkeypatch):
    """A slow first read (here 0.6 s) delays the replay; it does not release at once what
    the clock would have passed meanwhile."""
    settings, port, _ = gateway
    chunks = Replay.chunks

    async def slow_first_read(self, size):
        await asyncio.sleep(0.6)
        async for chunk in chunks(self, size):
            yield chunk

    monkeypatch.setattr(Replay, "chunks", slow_first_read)
    await produce(
        settings, "trades", [replay_trade(n * 50) for n in range(61)], written_ms=ingest_ms
    )
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe_replay(
            ws,
            symbols=["ETH/USDT", "BTC/USDT", "AAPL", "MSFT"],
            start=iso(BASE_US),
            end=iso(BASE_US + 3000 * MS),
            speed=10,
            interval_ms=100,
        )
        await receive(ws, "subscription_ack")
        messages, _ = await until_complete(ws)
    assert len(messages) >= 2
    assert sum(len(message["data"]) for message in messages) == 61
    first = [item["timestamp"] for item in messages[0]["data"]]
    assert max(first) < iso(BASE_US + 1500 * MS)


async def test_price_replay_conflates_per_symbol_within_an_interval(gateway):
    settings, port, _ = gateway
    await produce(
        settings, "quotes", [quote("MSFT", 400.0 + n, n) for n in range(1, 6)], written_ms=ingest_ms
    )
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": ["MSFT"],
                    "start": iso(BASE_US),
                    "end": iso(BASE_US + 10),
                    "speed": 1,
                    "interval_ms": 1000,
                }
            )
        )
        await receive(ws, "subscription_ack")
        messages, _ = await until_complete(ws)
    assert [[(i["symbol"], i["price"]) for i in m["data"]] for m in messages] == [[("MSFT", 405.0)]]


async def test_without_end_the_replay_hands_over_to_live_with_no_gap_and_no_duplicate(gateway):
    settings, port, _ = gateway
    symbols = ["ETH/USDT", "BTC/USDT", "AAPL", "MSFT"]
    await produce(settings, "trades", [replay_trade(n) for n in range(200)], written_ms=ingest_ms)
    start = BASE_US + 10 * MS

    async def keep_publishing() -> None:
        for first in range(200, 600, 50):
            await produce(
                settings,
                "trades",
                [replay_trade(n) for n in range(first, first + 50)],
                written_ms=ingest_ms,
            )
            await asyncio.sleep(0.05)

    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe_replay(ws, symbols=symbols, start=iso(start), speed=0, interval_ms=100)
        await receive(ws, "subscription_ack")
        writer = asyncio.create_task(keep_publishing())
        messages = []
        async with asyncio.timeout(30):
            while sum(len(m["data"]) for m in messages) < 590:
                message = json.loads(await ws.recv())
                if message["type"] == "data":
                    messages.append(message)
        await writer
    stored = await read_topic(settings, "trades", Trade)
    flags = [message.get("replay", False) for message in messages]
    assert flags == sorted(flags, reverse=True) and flags[0] and not flags[-1]
    replayed = [i["id"] for m in messages if m.get("replay") for i in m["data"]]
    live = [i["id"] for m in messages if not m.get("replay") for i in m["data"]]
    assert replayed[:190] == [f"t{n}" for n in range(10, 200)]
    everything = replayed + live
    assert len(everything) == len(set(everything)) == 590
    assert set(everything) == {r.trade_id for _, _, r in stored if r.ts_event >= start}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"start": iso(BASE_US - 3_600_000_000)}, "older than the retention"),
        ({"start": iso(BASE_US + 5000), "end": iso(BASE_US)}, "end is before start"),
        ({"end": iso(BASE_US)}, "end needs a start"),
        ({"start": iso(BASE_US), "end": "2100-01-01T00:00:00Z"}, "end is in the future"),
        ({"start": iso(BASE_US), "speed": 1001}, "speed"),
        ({"start": iso(BASE_US), "speed": -1}, "speed"),
        ({"start": "yesterday"}, "start"),
        ({"start": iso(BASE_US - 87_601 * 3_600_000_000), "end": iso(BASE_US)}, "longer than"),
    ],
)
async def test_bad_replays_get_replay_errors(gateway, fields, reason):
    settings, port, _ = gateway
    await produce(settings, "trades", [replay_trade(n) for n in range(5)], written_ms=ingest_ms)
    await expire_oldest(settings, "trades")
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe_replay(ws, **fields)
        error = await receive(ws, "error")
        assert error["error_code"] == "REPLAY_ERROR"
        assert reason in error["message"]
        await ws.send(json.dumps({"type": "ping"}))
        await receive(ws, "pong")


async def test_a_connection_may_run_only_so_many_replays(topics):
    settings = dataclasses.replace(topics, gateway_port=free_port(), max_replays_per_connection=1)
    await produce(settings, "trades", [replay_trade(n) for n in range(5)], written_ms=ingest_ms)
    url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
    async with serve_gateway(settings), websockets.connect(url) as ws:
        await subscribe_replay(ws, start=iso(BASE_US))
        await receive(ws, "subscription_ack")
        await subscribe_replay(ws, start=iso(BASE_US))
        error = await skip_to(ws, "error")
        assert error["error_code"] == "REPLAY_ERROR"
        assert "at most 1 replays per connection" in error["message"]
        await ws.send(
            json.dumps({"type": "subscribe", "stream_type": "trades", "symbols": ["AAPL"]})
        )
        await skip_to(ws, "subscription_ack")


async def test_the_gateway_runs_only_so_many_replays_at_once(topics):
    settings = dataclasses.replace(topics, gateway_port=free_port(), max_replays=1)
    await produce(settings, "trades", [replay_trade(n) for n in range(5)], written_ms=ingest_ms)
    url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
    async with serve_gateway(settings), websockets.connect(url) as other:
        async with websockets.connect(url) as first:
            await subscribe_replay(first, start=iso(BASE_US))  # no end: it runs on, live
            await receive(first, "subscription_ack")
            await subscribe_replay(other, start=iso(BASE_US))
            error = await skip_to(other, "error")
            assert error["error_code"] == "RATE_LIMITED"
            assert "1 replays already run on this gateway" in error["message"]
        # the first connection closed: its replay gave its slot back
        for _ in range(50):
            await subscribe_replay(other, start=iso(BASE_US))
            answer = json.loads(await other.recv())
            if answer["type"] == "subscription_ack":
                break
            assert answer["error_code"] == "RATE_LIMITED"
            await asyncio.sleep(0.1)
        assert answer["type"] == "subscription_ack"


def silent_client(port: int, message: dict) -> socket.socket:
    """A WebSocket client that sends one text frame and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /ws/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    payload = json.dumps(message).encode()
    assert len(payload) < 126
    mask = b"\x01\x02\x03\x04"
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


async def test_a_client_that_does_not_read_keeps_the_replay_bounded(topics):
    settings = dataclasses.replace(topics, gateway_port=free_port())
    total = 60_000
    await produce(
        settings, "trades", [replay_trade(n, "AAPL") for n in range(total)], written_ms=ingest_ms
    )
    async with serve_gateway(settings) as app:
        sock = await asyncio.to_thread(
            silent_client,
            settings.gateway_port,
            {
                "type": "subscribe",
                "stream_type": "trades",
                "symbols": ["AAPL"],
                "start": iso(BASE_US),
                "speed": 0,
            },
        )
        await asyncio.sleep(4)
        gc.collect()
        held = sum(
            len(o.items) if isinstance(o, Encoded) else 1
            for o in gc.get_objects()
            if isinstance(o, Replayed | ConsumerRecord | Encoded)
        )
        session = next(iter(app.state.registry.connections))
        (subscription,) = session.subscriptions.values()
        assert subscription.in_flight and session.outbox.qsize() <= 1
        sent = subscription.seq
        await asyncio.sleep(1)
        assert subscription.seq == sent
        sock.close()
    # Encoded items queued (2 000) and in hand (200), records fetched and not merged (fewer
    # than 500 plus one 256 KiB fetch: about 3 500 of these trades): far from all 60 000.
    assert 500 < held < 8000, held
    assert sent * 1000 < total


@pytest.mark.parametrize(
    ("speed", "expected"),
    [
        (2, [[(0, 103.0, True), (1, 98.0, True)], [(2, 97.0, False)]]),
        (
            0,
            [
                [
                    (0, 101.0, False),
                    (0, 102.0, False),
                    (0, 103.0, True),
                    (1, 99.0, False),
                    (1, 98.0, True),
                    (2, 97.0, False),
                ]
            ],
        ),
    ],
)
async def test_ohlcv_replay_keeps_the_latest_state_per_candle_unless_at_speed_zero(
    gateway, speed, expected
):
    settings, port, _ = gateway
    await produce(
        settings,
        "candles",
        [
            second_candle(0, 101.0, 1),
            second_candle(0, 102.0, 2),
            second_candle(0, 103.0, 3, closed=True),
            second_candle(1, 99.0, 1),
            second_candle(1, 98.0, 2, closed=True),
            second_candle(2, 97.0, 1),
            second_candle(1, 50.0, 1, timeframe="1m"),
        ],
        written_ms=ingest_ms,
    )
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "ohlcv",
                    "symbols": ["BTC/USDT"],
                    "timeframe": "1s",
                    "start": iso(BASE_US - 500_000),
                    "end": iso(BASE_US + 3_000_000),
                    "speed": speed,
                    "interval_ms": 1000,
                }
            )
        )
        assert (await receive(ws, "subscription_ack"))["timeframe"] == "1s"
        messages, _ = await until_complete(ws)
    seconds = {iso(BASE_US + n * 1_000_000): n for n in range(3)}
    assert [
        [(seconds[i["timestamp"]], i["close"], i["is_closed"]) for i in m["data"]] for m in messages
    ] == expected


async def test_a_candle_replay_at_speed_shows_the_bucket_forming_not_its_close(gateway):
    """Three revisions of one minute's candle, written 0, 30 and 59 s into it: at speed 50
    they come 0.6 s apart, each when it was written, the closed one last."""
    settings, port, _ = gateway
    await produce(
        settings,
        "candles",
        [
            Entry(
                second_candle(0, 100.0 + revision, revision, closed=revision == 3, timeframe="1m"),
                written_ms=BASE_US // MS + written_s * 1000,
            )
            for revision, written_s in enumerate((0, 30, 59), start=1)
        ],
    )
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "ohlcv",
                    "symbols": ["BTC/USDT"],
                    "timeframe": "1m",
                    "start": iso(BASE_US),
                    "end": iso(BASE_US + 59_000 * MS),
                    "speed": 50,
                    "interval_ms": 100,
                }
            )
        )
        await receive(ws, "subscription_ack")
        messages, _ = await until_complete(ws)
    assert [[(i["close"], i["is_closed"]) for i in m["data"]] for m in messages] == [
        [(101.0, False)],
        [(102.0, False)],
        [(103.0, True)],
    ]


async def test_an_unsubscribe_while_a_replay_closes_still_gives_its_consumer_back(
    gateway, monkeypatch
):
    settings, port, app = gateway
    closing: list[Replay] = []
    close = Replay.close

    async def slow_close(self):
        closing.append(self)
        await asyncio.sleep(0.5)
        await close(self)

    monkeypatch.setattr(Replay, "close", slow_close)
    await produce(settings, "trades", [replay_trade(n) for n in range(20)], written_ms=ingest_ms)
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe_replay(ws, start=iso(BASE_US), end=iso(BASE_US + 100 * MS), speed=0)
        await receive(ws, "subscription_ack")
        await poll_until(lambda: bool(closing), 10, interval=0.01)
        consumer = closing[0].consumer
        await ws.send(json.dumps({"type": "unsubscribe", "stream_type": "trades"}))
        await skip_to(ws, "unsubscribe_ack")
    await poll_until(lambda: consumer in app.state.readers.idle, 5)
    assert consumer.paused() == consumer.assignment()  # fetching nothing


async def test_symbols_unsubscribed_during_a_replay_stop_arriving(gateway):
    settings, port, _ = gateway
    await produce(
        settings, "trades", [replay_trade(n) for n in range(2000, 2100)], written_ms=ingest_ms
    )
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe_replay(ws, start=iso(BASE_US + 1500 * MS), speed=1, interval_ms=100)
        await receive(ws, "subscription_ack")
        await ws.send(
            json.dumps({"type": "unsubscribe", "stream_type": "trades", "symbols": ["AAPL"]})
        )
        assert (await receive(ws, "unsubscribe_ack"))["subscription_ids"] == []
        items: list[dict] = []
        async with asyncio.timeout(10):
            while len(items) < 25:
                items.extend((await receive(ws, "data"))["data"])
    assert [i["id"] for i in items] == [f"t{n}" for n in range(2000, 2100, 4)]
