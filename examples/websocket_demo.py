"""The spec's Python client: subscribe to three prices and print every update.

Usage: python examples/websocket_demo.py [ws://127.0.0.1:8000/ws/stream]
"""

import asyncio
import json
import sys

import websockets

DEFAULT_URI = "ws://localhost:8000/ws/stream"


async def stream_prices(uri: str = DEFAULT_URI) -> None:
    async with websockets.connect(uri) as websocket:
        # Subscribe to price stream
        subscription = {
            "type": "subscribe",
            "stream_type": "price",
            "symbols": ["AAPL", "TSLA", "NVDA"],
            "asset_type": "equity",
            "market": "US",
            "interval_ms": 2000,
            "data_type": "price",
        }

        await websocket.send(json.dumps(subscription))

        # Receive acknowledgment
        ack = json.loads(await websocket.recv())
        print(f"Subscribed: {ack}", flush=True)

        # Stream data
        while True:
            message = await websocket.recv()
            data = json.loads(message)

            if data["type"] == "data":
                for update in data["data"]:
                    print(f"{update['symbol']}: ${update['price']}", flush=True)


if __name__ == "__main__":
    asyncio.run(stream_prices(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URI))
