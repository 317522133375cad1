"""The gateway on a real uvicorn server and the real broker, fed by quotes we write ourselves."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from schemas.times import micros_to_iso
from tests.factories import BASE_US, quote
from tests.support_gateway import SPEC_PRICE_FIELDS, receive, until_known
from tests.support_kafka import produce


async def test_price_subscription_streams_quotes_from_the_topic(gateway):
    settings, port, app = gateway
    first = (quote("AAPL", 101.5, 1), quote("BTC/USDT", 65000.0, 2))
    await produce(settings, "quotes", first)
    await until_known(app, *first)
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": ["AAPL", "btc/usdt"],
                    "asset_type": "equity",
                    "market": "US",
                    "interval_ms": 1000,
                    "data_type": "price",
                }
            )
        )
        ack = await receive(ws, "subscription_ack")
        assert ack["symbols"] == ["AAPL", "BTC/USDT"]
        assert ack["interval_ms"] == 1000 and ack["stream_type"] == "price"
        assert ack["timestamp"].endswith("Z")
        data = await receive(ws, "data")
        assert data["subscription_id"] == ack["subscription_id"]
        assert data["stream_type"] == "price" and data["seq"] == 1
        by_symbol = {item["symbol"]: item for item in data["data"]}
        assert set(by_symbol) == {"AAPL", "BTC/USDT"}
        aapl = by_symbol["AAPL"]
        assert list(aapl) == SPEC_PRICE_FIELDS
        assert aapl["price"] == 101.5 and aapl["provider"] == "synthetic:alpha"
        assert aapl["timestamp"] == micros_to_iso(BASE_US + 1)
        assert aapl["confidence"] == 0.9 and aapl["volume"] == 1001.0

        await produce(settings, "quotes", [quote("AAPL", 102.0, 3)])
        update = await receive(ws, "data")
        assert update["seq"] == 2
        assert [(i["symbol"], i["price"]) for i in update["data"]] == [("AAPL", 102.0)]


async def test_values_conflate_to_the_latest_within_an_interval(gateway):
    settings, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": ["MSFT"],
                    "interval_ms": 2000,
                }
            )
        )
        await receive(ws, "subscription_ack")
        await produce(settings, "quotes", (quote("MSFT", 400.0 + i, 10 + i) for i in range(5)))
        data = await receive(ws, "data")
        assert [(i["symbol"], i["price"]) for i in data["data"]] == [("MSFT", 404.0)]


async def test_connections_endpoint_counts_what_is_subscribed_now(gateway):
    _, port, _ = gateway
    url = f"http://127.0.0.1:{port}/ws/connections"
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).json() == {
            "active_connections": 0,
            "total_subscriptions": 0,
            "subscribed_symbols": [],
        }
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
            for symbols in (["TSLA", "AAPL"], ["AAPL"]):
                await ws.send(
                    json.dumps({"type": "subscribe", "stream_type": "price", "symbols": symbols})
                )
                await receive(ws, "subscription_ack")
            assert (await http.get(url)).json() == {
                "active_connections": 1,
                "total_subscriptions": 2,
                "subscribed_symbols": ["AAPL", "TSLA"],
            }
            await ws.send(
                json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": ["TSLA"]})
            )
            await receive(ws, "unsubscribe_ack")
            assert (await http.get(url)).json()["subscribed_symbols"] == ["AAPL"]
        for _ in range(50):
            summary = (await http.get(url)).json()
            if summary["active_connections"] == 0:
                break
            await asyncio.sleep(0.1)
        assert summary == {
            "active_connections": 0,
            "total_subscriptions": 0,
            "subscribed_symbols": [],
        }


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "INVALID_JSON"),
        ("[1, 2]", "INVALID_JSON"),
        ('{"type": "launch"}', "INVALID_MESSAGE_TYPE"),
        ('{"type": "subscribe", "stream_type": "price", "symbols": []}', "SUBSCRIPTION_ERROR"),
        (
            '{"type": "subscribe", "stream_type": "price", "symbols": ["A"], "interval_ms": 99}',
            "SUBSCRIPTION_ERROR",
        ),
        (
            '{"type": "unsubscribe", "stream_type": "price", "symbols": ["NOPE"]}',
            "UNSUBSCRIBE_ERROR",
        ),
    ],
)
async def test_bad_messages_get_error_frames_and_the_connection_stays_usable(gateway, frame, code):
    _, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(frame)
        error = await receive(ws, "error")
        assert error["error_code"] == code
        assert error["message"] and error["timestamp"].endswith("Z")
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws, "pong"))["type"] == "pong"


async def test_binary_frames_are_refused_with_an_error(gateway):
    _, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(b"\x00\x01")
        assert (await receive(ws, "error"))["error_code"] == "INVALID_JSON"


async def test_prices_path_subscribes_at_once(gateway):
    settings, port, _ = gateway
    await produce(settings, "quotes", [quote("NVDA", 130.25, 20)])
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/prices/nvda,NVDA,btc/usdt") as ws:
        ack = await receive(ws, "subscription_ack")
        assert ack["symbols"] == ["NVDA", "BTC/USDT"]
        data = await receive(ws, "data")
        assert data["data"][0]["symbol"] == "NVDA" and data["data"][0]["price"] == 130.25


async def test_prices_path_with_bad_symbols_gets_an_error_and_close_1008(gateway):
    _, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/prices/AAPL,,$$$") as ws:
        error = await receive(ws, "error")
        assert error["error_code"] == "SUBSCRIPTION_ERROR"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008


async def test_unsubscribe_by_symbols_and_by_null(gateway):
    settings, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": ["AAPL", "MSFT"],
                    "interval_ms": 100,
                }
            )
        )
        first = await receive(ws, "subscription_ack")
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": ["TSLA"],
                    "interval_ms": 100,
                }
            )
        )
        second = await receive(ws, "subscription_ack")
        await ws.send(
            json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": ["MSFT"]})
        )
        partial = await receive(ws, "unsubscribe_ack")
        assert partial["symbols"] == ["MSFT"] and partial["subscription_ids"] == []
        await ws.send(json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": None}))
        everything = await receive(ws, "unsubscribe_ack")
        assert sorted(everything["symbols"]) == ["AAPL", "TSLA"]
        assert sorted(everything["subscription_ids"]) == sorted(
            [first["subscription_id"], second["subscription_id"]]
        )
        await produce(settings, "quotes", [quote("AAPL", 150.0, 30)])
        with pytest.raises(TimeoutError):
            await receive(ws, "data", within=1.0)


async def test_heartbeat_reports_active_subscriptions(gateway):
    _, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["AAPL"]})
        )
        await receive(ws, "subscription_ack")
        message = await receive(ws, "heartbeat", within=5)
        assert message["active_subscriptions"] == 1 and message["timestamp"].endswith("Z")
