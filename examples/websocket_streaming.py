"""A robust streaming client: several subscriptions on one socket, reconnect and resubscribe.

Usage:
    python examples/websocket_streaming.py [--uri ws://127.0.0.1:8000/ws/stream]
        [--api-key KEY] [--messages N]

It subscribes to equity prices, crypto quotes, 1-minute BTC/USDT candles and BTC/USDT
trades, prints every update, and when the connection drops it reconnects with exponential
backoff (with jitter, capped at 30 s) and subscribes again. With --messages it stops after
that many data messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random

import websockets

SUBSCRIPTIONS = [
    {
        "type": "subscribe",
        "stream_type": "price",
        "symbols": ["AAPL", "TSLA"],
        "asset_type": "equity",
        "market": "US",
        "interval_ms": 1000,
        "data_type": "price",
    },
    {
        "type": "subscribe",
        "stream_type": "quote",
        "symbols": ["ETH/USDT"],
        "asset_type": "crypto",
        "market": "CRYPTO",
        "interval_ms": 1000,
    },
    {
        "type": "subscribe",
        "stream_type": "ohlcv",
        "symbols": ["BTC/USDT"],
        "asset_type": "crypto",
        "market": "CRYPTO",
        "interval_ms": 5000,
        "timeframe": "1m",
    },
    {
        "type": "subscribe",
        "stream_type": "trades",
        "symbols": ["BTC/USDT"],
        "asset_type": "crypto",
        "market": "CRYPTO",
        "interval_ms": 1000,
    },
]


def describe(message: dict) -> list[str]:
    """Printable lines for one server message."""
    kind = message["type"]
    if kind == "data":
        stream = message["stream_type"]
        lines = []
        for item in message["data"]:
            if stream == "ohlcv":
                lines.append(
                    f"ohlcv {item['symbol']} {item['timeframe']} {item['timestamp']} "
                    f"o={item['open']} h={item['high']} l={item['low']} "
                    f"c={item['close']} closed={item['is_closed']}"
                )
            elif stream == "trades":
                lines.append(
                    f"trade {item['symbol']} {item['side']} {item['amount']} @ {item['price']}"
                )
            else:
                lines.append(
                    f"{stream} {item['symbol']} {item['price']} "
                    f"({item['provider']}, confidence {item['confidence']})"
                )
        return lines
    if kind == "subscription_ack":
        return [f"subscribed {message['stream_type']} {','.join(message['symbols'])}"]
    if kind in ("error", "status"):
        return [f"{kind}: {json.dumps(message)}"]
    return []


async def stream(uri: str, api_key: str | None, max_messages: int | None) -> None:
    """Stream until ``max_messages`` data messages arrived (or forever), reconnecting."""
    headers = {"X-API-Key": api_key} if api_key else {}
    received = 0
    attempt = 0
    while max_messages is None or received < max_messages:
        try:
            async with websockets.connect(uri, additional_headers=headers) as socket:
                print("connected", flush=True)
                attempt = 0
                for subscription in SUBSCRIPTIONS:
                    await socket.send(json.dumps(subscription))
                async for raw in socket:
                    message = json.loads(raw)
                    for line in describe(message):
                        print(line, flush=True)
                    if message["type"] == "data":
                        received += 1
                        if max_messages is not None and received >= max_messages:
                            return
        except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake) as error:
            delay = min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            print(
                f"disconnected ({error.__class__.__name__}); reconnecting in {delay:.1f} s",
                flush=True,
            )
            await asyncio.sleep(delay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="ws://127.0.0.1:8000/ws/stream")
    parser.add_argument("--api-key")
    parser.add_argument("--messages", type=int)
    args = parser.parse_args()
    asyncio.run(stream(args.uri, args.api_key, args.messages))


if __name__ == "__main__":
    main()
