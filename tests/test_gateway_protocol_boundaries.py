"""Boundaries of the client protocol, over a real socket to a real gateway and broker.

Symbol counts (1-50), intervals (100-60000 ms), every enum field, unsubscribe by null and by
some symbols, the stream type and fields of data per stream type, ``seq`` per subscription,
and the ordering rules of docs/protocol.md: the ack before any data of its subscription and
nothing of a subscription after its ``unsubscribe_ack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json

import websockets

from tests.factories import quote
from tests.support_gateway import QUOTE_FIELDS, SPEC_PRICE_FIELDS, receive, until_known
from tests.support_kafka import produce, producing

NOISE = {"heartbeat", "status"}


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/ws/stream"


def subscribe_message(**fields) -> str:
    message = {"type": "subscribe", "stream_type": "price", "symbols": ["AAPL"]}
    message.update(fields)
    return json.dumps(message)


async def next_frame(ws, within: float = 10.0) -> dict:
    """The next frame that is not a heartbeat or a status message."""
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] not in NOISE:
                return message


async def frames_for(ws, seconds: float) -> list[dict]:
    """Every frame but heartbeats and status messages that arrives within ``seconds``."""
    frames = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] not in NOISE:
                    frames.append(message)
    return frames


async def reply(ws, frame: str) -> dict:
    """Send ``frame`` and return the next frame that answers it (no data may come between)."""
    await ws.send(frame)
    message = await next_frame(ws)
    assert message["type"] != "data", message
    return message


async def assert_refused(ws, frame: str, code: str, naming: str) -> None:
    error = await reply(ws, frame)
    assert error["type"] == "error", (frame, error)
    assert error["error_code"] == code, (frame, error)
    assert naming in error["message"], (frame, error)
    assert error["timestamp"].endswith("Z")


async def assert_usable(ws) -> None:
    assert (await reply(ws, json.dumps({"type": "ping"})))["type"] == "pong"


@contextlib.asynccontextmanager
async def publishing(settings, symbols: list[str], period: float = 0.05):
    """Publish a quote of each symbol every ``period`` in the background; yields a dict with
    the last price published per symbol (prices only grow)."""
    last: dict[str, float] = {}
    async with producing(settings) as producer:

        async def run() -> None:
            for n in itertools.count(1):
                for symbol in symbols:
                    published = quote(symbol, 100.0 + n, 1000 + n)
                    await (await producer.send("quotes", published))
                    last[symbol] = published.price
                await asyncio.sleep(period)

        task = asyncio.create_task(run())
        try:
            yield last
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_symbol_count_boundaries_0_1_50_51(gateway):
    _, port, _ = gateway
    fifty = [f"SYM{n}" for n in range(50)]
    async with websockets.connect(url(port)) as ws:
        await assert_refused(ws, subscribe_message(symbols=[]), "SUBSCRIPTION_ERROR", "symbols")
        await assert_refused(
            ws, subscribe_message(symbols=[*fifty, "SYM50"]), "SUBSCRIPTION_ERROR", "symbols"
        )
        one = await reply(ws, subscribe_message(symbols=["aapl"]))
        assert one["type"] == "subscription_ack" and one["symbols"] == ["AAPL"]
        full = await reply(ws, subscribe_message(symbols=fifty))
        assert full["type"] == "subscription_ack" and full["symbols"] == fifty
        await assert_usable(ws)


async def test_interval_boundaries_99_100_60000_60001(gateway):
    _, port, _ = gateway
    async with websockets.connect(url(port)) as ws:
        for interval in (99, 60001, 0, -100, 100.5, "1000"):
            await assert_refused(
                ws, subscribe_message(interval_ms=interval), "SUBSCRIPTION_ERROR", "interval_ms"
            )
        for interval in (100, 60000):
            ack = await reply(ws, subscribe_message(interval_ms=interval))
            assert ack["type"] == "subscription_ack" and ack["interval_ms"] == interval
        ack = await reply(ws, subscribe_message())
        assert ack["interval_ms"] == 1000, "the default interval"
        await assert_usable(ws)


INVALID_ENUMS = [
    ("stream_type", "prices"),
    ("stream_type", "PRICE"),
    ("stream_type", ""),
    ("stream_type", None),
    ("stream_type", 1),
    ("asset_type", "stock"),
    ("asset_type", "EQUITY"),
    ("asset_type", 3),
    ("market", "us"),
    ("market", "NASDAQ"),
    ("market", ["US"]),
    ("data_type", "tick"),
    ("data_type", "PRICE"),
    ("data_type", False),
]
VALID_ENUMS = {
    "stream_type": ["price", "ohlcv", "quote", "trades", "multi_asset"],
    "asset_type": ["equity", "crypto", "forex", "commodity", "index", "etf"],
    "market": ["US", "UK", "EU", "JP", "CN", "HK", "CRYPTO", "GLOBAL"],
    "data_type": ["price", "ohlcv", "fundamentals"],
}


async def test_each_invalid_enum_value_is_refused_naming_its_field(gateway):
    _, port, _ = gateway
    async with websockets.connect(url(port)) as ws:
        for field, value in INVALID_ENUMS:
            await assert_refused(
                ws, subscribe_message(**{field: value}), "SUBSCRIPTION_ERROR", field
            )
            await assert_usable(ws)
        await assert_refused(
            ws,
            json.dumps({"type": "unsubscribe", "stream_type": "prices"}),
            "UNSUBSCRIBE_ERROR",
            "stream_type",
        )
        await assert_usable(ws)
        for field, values in VALID_ENUMS.items():
            for value in values:
                ack = await reply(ws, subscribe_message(**{field: value}))
                assert ack["type"] == "subscription_ack", (field, value, ack)
        await assert_usable(ws)


async def test_unsubscribe_partial_null_and_omitted_symbols(gateway):
    settings, port, _ = gateway
    async with websockets.connect(url(port)) as ws:
        prices = await reply(ws, subscribe_message(symbols=["AAPL", "MSFT"], interval_ms=100))
        quotes = await reply(
            ws, subscribe_message(stream_type="quote", symbols=["AAPL"], interval_ms=100)
        )
        partial = await reply(
            ws,
            json.dumps(
                {"type": "unsubscribe", "stream_type": "price", "symbols": ["msft", "NOPE"]}
            ),
        )
        assert partial["type"] == "unsubscribe_ack" and partial["stream_type"] == "price"
        assert partial["symbols"] == ["MSFT"] and partial["subscription_ids"] == []
        assert partial["timestamp"].endswith("Z")

        await produce(settings, "quotes", [quote("AAPL", 150.0, 1), quote("MSFT", 400.0, 2)])
        seen: dict[str, set[str]] = {
            prices["subscription_id"]: set(),
            quotes["subscription_id"]: set(),
        }
        async with asyncio.timeout(10):
            while not all(seen.values()):
                data = await receive(ws, "data")
                seen[data["subscription_id"]].update(i["symbol"] for i in data["data"])
        assert seen == {prices["subscription_id"]: {"AAPL"}, quotes["subscription_id"]: {"AAPL"}}

        everything = await reply(
            ws, json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": None})
        )
        assert everything["type"] == "unsubscribe_ack"
        assert everything["symbols"] == ["AAPL"]
        assert everything["subscription_ids"] == [prices["subscription_id"]]
        await assert_refused(
            ws,
            json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": None}),
            "UNSUBSCRIBE_ERROR",
            "price",
        )
        await assert_refused(
            ws,
            json.dumps({"type": "unsubscribe", "stream_type": "quote", "symbols": ["MSFT"]}),
            "UNSUBSCRIBE_ERROR",
            "MSFT",
        )
        await assert_refused(
            ws,
            json.dumps({"type": "unsubscribe", "stream_type": "quote", "symbols": []}),
            "UNSUBSCRIBE_ERROR",
            "symbols",
        )

        omitted = await reply(ws, json.dumps({"type": "unsubscribe", "stream_type": "quote"}))
        assert omitted["type"] == "unsubscribe_ack" and omitted["symbols"] == ["AAPL"]
        assert omitted["subscription_ids"] == [quotes["subscription_id"]]
        await produce(settings, "quotes", [quote("AAPL", 151.0, 3)])
        assert [f for f in await frames_for(ws, 1.0) if f["type"] == "data"] == []


async def test_data_stream_type_and_fields_match_each_subscription(gateway):
    settings, port, app = gateway
    aapl = dataclasses.replace(
        quote("AAPL", 195.5, 5), bid=195.25, ask=195.75, bid_size=12.0, ask_size=8.5
    )
    btc = dataclasses.replace(
        quote("BTC/USDT", 65000.0, 6), bid=64999.0, ask=65001.0, bid_size=0.5, ask_size=1.25
    )
    await produce(settings, "quotes", [aapl, btc])
    await until_known(app, aapl, btc)
    async with websockets.connect(url(port)) as ws:
        for stream_type, symbols, extra in [
            ("price", ["AAPL"], {"asset_type": "equity", "market": "US"}),
            ("quote", ["AAPL", "BTC/USDT"], {}),
            ("multi_asset", ["AAPL", "BTC/USDT"], {"asset_type": "crypto", "market": "GLOBAL"}),
        ]:
            await ws.send(
                subscribe_message(
                    stream_type=stream_type, symbols=symbols, interval_ms=200, **extra
                )
            )
        acks: dict[str, str] = {}
        first: dict[str, dict] = {}
        async with asyncio.timeout(10):
            while len(first) < 3:
                frame = await next_frame(ws)
                if frame["type"] == "subscription_ack":
                    acks[frame["subscription_id"]] = frame["stream_type"]
                    continue
                assert frame["type"] == "data", frame
                assert frame["stream_type"] == acks[frame["subscription_id"]]
                first.setdefault(frame["stream_type"], frame)
        assert sorted(acks.values()) == ["multi_asset", "price", "quote"]

        [price] = first["price"]["data"]
        assert list(price) == SPEC_PRICE_FIELDS and price["price"] == 195.5
        assert "bid" not in price

        top = {item["symbol"]: item for item in first["quote"]["data"]}
        assert set(top) == {"AAPL", "BTC/USDT"}
        for item, published in ((top["AAPL"], aapl), (top["BTC/USDT"], btc)):
            assert list(item) == QUOTE_FIELDS
            assert (item["bid"], item["ask"], item["bid_size"], item["ask_size"]) == (
                published.bid,
                published.ask,
                published.bid_size,
                published.ask_size,
            )
            assert item["price"] == published.price

        multi = first["multi_asset"]["data"]
        assert sorted(i["symbol"] for i in multi) == ["AAPL", "BTC/USDT"], (
            "one multi_asset message carries the equity and the crypto symbol"
        )
        assert all(list(i) == SPEC_PRICE_FIELDS for i in multi)
        assert {i["symbol"]: i["price"] for i in multi} == {"AAPL": 195.5, "BTC/USDT": 65000.0}


async def test_seq_counts_from_one_per_subscription_on_one_socket(gateway):
    settings, port, _ = gateway
    async with websockets.connect(url(port)) as ws:
        one = await reply(ws, subscribe_message(symbols=["AAPL"], interval_ms=100))
        two = await reply(ws, subscribe_message(symbols=["AAPL", "MSFT"], interval_ms=150))
        ids = {one["subscription_id"], two["subscription_id"]}
        seqs: dict[str, list[int]] = {sub_id: [] for sub_id in ids}
        for n in (1, 2, 3):
            await produce(settings, "quotes", [quote("AAPL", 100.0 + n, n)])
            async with asyncio.timeout(10):
                while any(len(s) < n for s in seqs.values()):
                    data = await receive(ws, "data")
                    seqs[data["subscription_id"]].append(data["seq"])
                    assert [i["price"] for i in data["data"]] == [100.0 + n]
        assert seqs == {sub_id: [1, 2, 3] for sub_id in ids}

        late = await reply(ws, subscribe_message(symbols=["AAPL"], interval_ms=100))
        snapshot = await receive(ws, "data")
        assert snapshot["subscription_id"] == late["subscription_id"] and snapshot["seq"] == 1


async def test_ack_precedes_any_data_of_its_subscription(gateway):
    settings, port, _ = gateway
    await produce(settings, "quotes", [quote("AAPL", 101.0, 1), quote("MSFT", 401.0, 2)])
    async with websockets.connect(url(port)) as ws:
        for n in range(8):
            stream_type = ["price", "quote", "multi_asset"][n % 3]
            await ws.send(
                subscribe_message(
                    stream_type=stream_type, symbols=["AAPL", "MSFT"], interval_ms=100
                )
            )
        acked: list[str] = []
        snapshots: dict[str, dict] = {}
        async with asyncio.timeout(10):
            while len(snapshots) < 8:
                frame = await next_frame(ws)
                if frame["type"] == "subscription_ack":
                    acked.append(frame["subscription_id"])
                else:
                    assert frame["type"] == "data", frame
                    assert frame["subscription_id"] in acked, "data came before its ack"
                    snapshots.setdefault(frame["subscription_id"], frame)
        assert len(acked) == 8
        assert all(frame["seq"] == 1 for frame in snapshots.values())


async def test_nothing_of_a_subscription_arrives_after_its_unsubscribe_ack(gateway):
    settings, port, _ = gateway
    interval = 0.4
    async with websockets.connect(url(port)) as ws, publishing(settings, ["AAPL", "MSFT"]) as last:
        doomed = await reply(
            ws, subscribe_message(symbols=["AAPL", "MSFT"], interval_ms=int(interval * 1000))
        )
        control = await reply(
            ws, subscribe_message(stream_type="quote", symbols=["AAPL"], interval_ms=100)
        )
        doomed_id = doomed["subscription_id"]
        async with asyncio.timeout(10):
            while True:
                data = await receive(ws, "data")
                if data["subscription_id"] == doomed_id and data["seq"] >= 2:
                    break

        await ws.send(
            json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": ["MSFT"]})
        )
        async with asyncio.timeout(10):
            while (frame := await next_frame(ws))["type"] != "unsubscribe_ack":
                assert frame["type"] == "data"
        assert frame["symbols"] == ["MSFT"] and frame["subscription_ids"] == []
        after_partial = await frames_for(ws, 1.5 * interval + 0.5)
        doomed_data = [f for f in after_partial if f.get("subscription_id") == doomed_id]
        assert doomed_data, "the subscription goes on with AAPL"
        assert all(i["symbol"] == "AAPL" for f in doomed_data for i in f["data"])

        await ws.send(json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": None}))
        async with asyncio.timeout(10):
            while (frame := await next_frame(ws))["type"] != "unsubscribe_ack":
                assert frame["type"] == "data"
        assert frame["subscription_ids"] == [doomed_id]
        published_at_ack = last["AAPL"]
        after = await frames_for(ws, 1.5 * interval + 0.6)
        assert [f for f in after if f.get("subscription_id") == doomed_id] == []
        control_prices = [
            i["price"]
            for f in after
            if f["type"] == "data" and f["subscription_id"] == control["subscription_id"]
            for i in f["data"]
        ]
        assert control_prices and max(control_prices) > published_at_ack, (
            "quotes published after the ack still reached the socket"
        )


async def test_message_size_limit_boundary(gateway):
    settings, port, _ = gateway
    limit = settings.max_message_bytes
    head = '{"type":"ping","pad":"'
    at_limit = head + "x" * (limit - len(head) - 2) + '"}'
    assert len(at_limit.encode()) == limit
    async with websockets.connect(url(port)) as ws:
        assert (await reply(ws, at_limit))["type"] == "pong"
        over = head + "x" * (limit - len(head) - 1) + '"}'
        error = await reply(ws, over)
        assert error["type"] == "error" and error["error_code"] == "MESSAGE_TOO_LARGE"
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1009


async def test_message_size_limit_counts_bytes_not_characters(gateway):
    settings, port, _ = gateway
    limit = settings.max_message_bytes
    head = '{"type":"ping","pad":"'
    wide = head + "\u00e9" * (limit // 2 + 100) + '"}'
    assert len(wide) <= limit < len(wide.encode())
    async with websockets.connect(url(port)) as ws:
        answer = await reply(ws, wide)
        assert answer["type"] == "error" and answer["error_code"] == "MESSAGE_TOO_LARGE", answer
