"""A stand-in for Yahoo's streamer on 127.0.0.1, sending recorded pricing updates.

Each update of ``tests/fixtures/yahoo/streamer_pricing.json`` is encoded as the streamer
does it: yfinance's own ``PricingData`` protobuf, base64, in a ``{"type": "pricing",
"message": ...}`` text frame. yfinance's ``AsyncWebSocket`` connects to it over a real
WebSocket, so its connection, subscription and decoding all run.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator

import websockets
from websockets.asyncio.server import ServerConnection
from yfinance.pricing_pb2 import PricingData

from tests.ccxt_http import fixture


def pricing_frame(fields: dict) -> str:
    """One streamer frame carrying ``fields`` as a base64 PricingData protobuf."""
    encoded = base64.b64encode(PricingData(**fields).SerializeToString()).decode()
    return json.dumps({"type": "pricing", "message": encoded})


RECORDED = {
    fields["id"]: pricing_frame(fields)
    for fields in json.loads(fixture("yahoo/streamer_pricing.json"))["messages"]
}


class RecordedStreamer:
    """Answers each ``{"subscribe": [...]}`` with the recorded updates of the newly
    subscribed tickers (then ``extra`` frames), once; afterwards it stays quiet."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.extra = extra
        self.subscriptions: list[list[str]] = []
        self.url = ""

    async def _serve(self, connection: ServerConnection) -> None:
        sent: set[str] = set()
        async for text in connection:
            tickers = json.loads(text).get("subscribe", [])
            self.subscriptions.append(tickers)
            for ticker in tickers:
                if ticker in RECORDED and ticker not in sent:
                    sent.add(ticker)
                    await connection.send(RECORDED[ticker])
            for frame in self.extra:
                await connection.send(frame)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RecordedStreamer]:
        """Listen on a free port of 127.0.0.1 while the context lasts."""
        async with websockets.serve(self._serve, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/?version=2"
            yield self
