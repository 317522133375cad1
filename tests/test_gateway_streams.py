"""ohlcv and trades streams, staleness status, and the access rules, on a real server."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json

import httpx
import pytest
import websockets

from runtime.testing import free_port
from schemas import Trade
from schemas.times import micros_to_iso
from tests.factories import BASE_US, SECOND, quote, second_candle, trade
from tests.support import poll_until
from tests.support_gateway import receive, serve_gateway
from tests.support_kafka import produce


def eth_trade(number: int, provider: str = "synthetic:alpha") -> Trade:
    """Trade ``t<number>`` of ETH/USDT ``number`` µs after ``BASE_US``, priced
    ``3000 + number``, a buy when ``number`` is odd."""
    return trade(
        symbol="ETH/USDT",
        trade_id=f"t{number}",
        provider=provider,
        ts_event=BASE_US + number,
        ts_ingest=BASE_US + number + 10,
        price=3000.0 + number,
        amount=0.5,
        side="buy" if number % 2 else "sell",
    )


async def subscribe(ws, **fields) -> dict:
    await ws.send(json.dumps({"type": "subscribe", **fields}))
    return await receive(ws, "subscription_ack")


async def test_ohlcv_snapshot_then_every_closed_candle(gateway):
    settings, port, app = gateway
    await produce(settings, "candles", [second_candle(0, 101.0, 1), second_candle(0, 102.0, 2)])
    series = app.state.market.candles.series
    await poll_until(
        lambda: (
            ("BTC/USDT", "1s") in series and series["BTC/USDT", "1s"].buckets[BASE_US].revision == 2
        ),
        within=10,
    )
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        ack = await subscribe(
            ws, stream_type="ohlcv", symbols=["BTC/USDT"], interval_ms=1000, timeframe="1s"
        )
        assert ack["timeframe"] == "1s"
        snapshot = await receive(ws, "data")
        assert snapshot["stream_type"] == "ohlcv"
        assert snapshot["data"] == [
            {
                "symbol": "BTC/USDT",
                "timestamp": micros_to_iso(BASE_US),
                "open": 100.0,
                "high": 102.0,
                "low": 100.0,
                "close": 102.0,
                "volume": 2.5,
                "is_closed": False,
                "timeframe": "1s",
            }
        ]
        await produce(
            settings,
            "candles",
            [
                second_candle(0, 103.0, 3, closed=True),
                second_candle(1, 99.0, 1),
                second_candle(1, 98.0, 2, closed=True),
                second_candle(2, 97.0, 1),
            ],
        )
        seen: dict[str, dict] = {}
        async with asyncio.timeout(10):
            while len(seen) < 3 or not seen[micros_to_iso(BASE_US + SECOND)]["is_closed"]:
                for item in (await receive(ws, "data"))["data"]:
                    seen[item["timestamp"]] = item
        first, second = seen[micros_to_iso(BASE_US)], seen[micros_to_iso(BASE_US + SECOND)]
        assert first["is_closed"] and first["close"] == 103.0
        assert second["is_closed"] and second["close"] == 98.0


async def test_ohlcv_timeframes_are_separate(gateway):
    settings, port, _ = gateway
    await produce(
        settings,
        "candles",
        [second_candle(0, 110.0, 1, timeframe="1m"), second_candle(0, 120.0, 1, timeframe="1s")],
    )
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe(ws, stream_type="ohlcv", symbols=["BTC/USDT"], interval_ms=500)
        data = await receive(ws, "data")
        assert [(i["timeframe"], i["close"]) for i in data["data"]] == [("1m", 110.0)]


async def test_every_trade_arrives_once_batched_per_interval(gateway):
    settings, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe(ws, stream_type="trades", symbols=["ETH/USDT"], interval_ms=500)
        await produce(settings, "trades", [*(eth_trade(n) for n in range(1, 41)), eth_trade(7)])
        ids: list[str] = []
        messages = 0
        async with asyncio.timeout(10):
            while len(ids) < 40:
                data = await receive(ws, "data")
                assert data["stream_type"] == "trades"
                messages += 1
                ids.extend(item["id"] for item in data["data"])
        assert ids == [f"t{n}" for n in range(1, 41)]
        assert messages < 40
        with pytest.raises(TimeoutError):
            await receive(ws, "data", within=1.2)


async def test_trade_items_carry_the_trade(gateway):
    settings, port, _ = gateway
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await subscribe(ws, stream_type="trades", symbols=["ETH/USDT"], interval_ms=100)
        await produce(settings, "trades", [eth_trade(101)])
        item = (await receive(ws, "data"))["data"][0]
        assert item == {
            "symbol": "ETH/USDT",
            "id": "t101",
            "price": 3101.0,
            "amount": 0.5,
            "side": "buy",
            "timestamp": micros_to_iso(BASE_US + 101),
            "provider": "synthetic:alpha",
        }


async def test_a_symbol_without_updates_is_reported_stale_then_live(topics):
    settings = dataclasses.replace(topics, gateway_port=free_port(), stale_after_seconds=1.0)
    async with serve_gateway(settings):
        url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
        async with websockets.connect(url) as ws:
            await subscribe(ws, stream_type="price", symbols=["AMZN"], interval_ms=100)
            stale = await receive(ws, "status", within=5)
            assert (stale["symbol"], stale["status"]) == ("AMZN", "stale")
            await produce(settings, "quotes", [quote("AMZN", 185.0, 1)])
            async with asyncio.timeout(5):
                kinds = []
                while not kinds or kinds[-1]["type"] != "status":
                    kinds.append(json.loads(await ws.recv()))
            assert [k["type"] for k in kinds] == ["data", "status"]
            assert (kinds[-1]["symbol"], kinds[-1]["status"]) == ("AMZN", "live")


@pytest.fixture
async def secured(topics):
    settings = dataclasses.replace(
        topics,
        gateway_port=free_port(),
        api_keys=("k-one", "k-two"),
        allowed_origins=("https://dash.example",),
        max_connections=3,
        max_connections_per_client=2,
        max_subscriptions_per_connection=1,
        max_symbols_per_connection=2,
        max_message_bytes=1024,
    )
    async with serve_gateway(settings):
        yield f"127.0.0.1:{settings.gateway_port}"


async def test_api_key_is_required_when_configured(secured):
    async with websockets.connect(f"ws://{secured}/ws/stream") as ws:
        error = await receive(ws, "error")
        assert error["error_code"] == "UNAUTHORIZED"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4401
    async with websockets.connect(
        f"ws://{secured}/ws/stream", additional_headers={"X-API-Key": "k-two"}
    ) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws, "pong"))["type"] == "pong"
    async with websockets.connect(f"ws://{secured}/ws/prices/AAPL?api_key=k-one") as ws:
        assert (await receive(ws, "subscription_ack"))["symbols"] == ["AAPL"]
    # a browser's way: the key as a subprotocol beside "fiml", which the gateway answers
    key_protocol = "fiml.key." + base64.urlsafe_b64encode(b"k-two").decode().rstrip("=")
    async with websockets.connect(
        f"ws://{secured}/ws/stream", subprotocols=["fiml", key_protocol]
    ) as ws:
        assert ws.subprotocol == "fiml"
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws, "pong"))["type"] == "pong"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"http://{secured}/ws/connections")).status_code == 401
        for headers in ({"X-API-Key": "k-one"}, {"Authorization": "Bearer k-two"}):
            allowed = await http.get(f"http://{secured}/ws/connections", headers=headers)
            assert allowed.status_code == 200
        wrong = await http.get(
            f"http://{secured}/ws/connections", headers={"Authorization": "Bearer k-three"}
        )
        assert wrong.status_code == 401


async def test_by_default_only_the_gateways_own_origin_and_non_browsers_are_served(gateway):
    _, port, _ = gateway
    url = f"ws://127.0.0.1:{port}/ws/stream"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    for origin in (f"http://127.0.0.1:{port}", None):
        async with websockets.connect(url, origin=origin) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert (await receive(ws, "pong"))["type"] == "pong"


async def test_origin_allowlist(secured):
    headers = {"X-API-Key": "k-one"}
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            f"ws://{secured}/ws/stream", origin="https://evil.example", additional_headers=headers
        ):
            pass
    async with websockets.connect(
        f"ws://{secured}/ws/stream", origin="https://dash.example", additional_headers=headers
    ) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws, "pong"))["type"] == "pong"


async def refused_with(url: str, headers: dict, source: str, reason: str) -> None:
    """A connection from ``source`` is told ``reason`` and closed with 1013."""
    async with websockets.connect(
        url, additional_headers=headers, local_addr=(source, 0)
    ) as refused:
        error = await receive(refused, "error")
        assert error["error_code"] == "PROCESSING_ERROR" and reason in error["message"]
        with pytest.raises(websockets.ConnectionClosed):
            await refused.recv()
        assert refused.close_code == 1013


async def test_connection_and_subscription_caps(secured):
    headers = {"X-API-Key": "k-one"}
    url = f"ws://{secured}/ws/stream"
    async with (
        websockets.connect(url, additional_headers=headers) as first,
        websockets.connect(url, additional_headers=headers) as second,
    ):
        too_many = {
            "type": "subscribe",
            "stream_type": "price",
            "symbols": ["AAPL", "TSLA", "NVDA"],
        }
        await first.send(json.dumps(too_many))
        refused = await receive(first, "error")
        assert refused["error_code"] == "SUBSCRIPTION_ERROR"
        assert "at most 2 symbols per connection" in refused["message"]
        await subscribe(first, stream_type="price", symbols=["AAPL", "MSFT"])
        await first.send(
            json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["MSFT"]})
        )
        refused = await receive(first, "error")
        assert refused["error_code"] == "SUBSCRIPTION_ERROR" and "at most 1" in refused["message"]
        await second.send(json.dumps({"type": "ping"}))
        await receive(second, "pong")
        await refused_with(url, headers, "127.0.0.1", "2 connections per client address")
        async with websockets.connect(
            url, additional_headers=headers, local_addr=("127.0.0.2", 0)
        ) as third:
            await third.send(json.dumps({"type": "ping"}))
            await receive(third, "pong")
            await refused_with(url, headers, "127.0.0.3", "connection limit of 3")
    # the closed connections no longer count
    async with websockets.connect(url, additional_headers=headers) as again:
        await again.send(json.dumps({"type": "ping"}))
        await receive(again, "pong")


async def test_new_symbols_per_connection_are_rate_limited_by_default(gateway):
    """The default limit (1000 new symbols in any minute): two full
    watchlists of 500 pass, the next new symbol is refused with RATE_LIMITED and nothing is
    added; symbols the connection holds cost nothing."""
    settings, port, _ = gateway
    limit = settings.max_new_symbols_per_minute
    symbols = [f"N{n:04d}" for n in range(limit + 1)]
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        for watchlist in range(0, limit, 500):
            if watchlist:
                await ws.send(json.dumps({"type": "unsubscribe", "stream_type": "price"}))
                await receive(ws, "unsubscribe_ack")
            for start in range(watchlist, watchlist + 500, 50):
                await subscribe(ws, stream_type="price", symbols=symbols[start : start + 50])
        dropped = symbols[limit - 100 : limit - 50]  # room below the 500-symbol cap
        await ws.send(
            json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": dropped})
        )
        await receive(ws, "unsubscribe_ack")
        await ws.send(
            json.dumps({"type": "subscribe", "stream_type": "price", "symbols": symbols[-1:]})
        )
        refused = await receive(ws, "error")
        assert refused["error_code"] == "RATE_LIMITED", refused
        assert "1000 new symbols per minute" in refused["message"]
        # a symbol the connection holds is not new
        held = symbols[limit - 50 : limit]
        assert (await subscribe(ws, stream_type="quote", symbols=held))["symbols"] == held


async def test_a_message_over_the_size_limit_closes_with_1009(secured):
    async with websockets.connect(
        f"ws://{secured}/ws/stream", additional_headers={"X-API-Key": "k-one"}
    ) as ws:
        await ws.send(json.dumps({"type": "ping", "pad": "x" * 2000}))
        error = await receive(ws, "error")
        assert error["error_code"] == "MESSAGE_TOO_LARGE"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
