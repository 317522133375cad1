"""A stand-in for the WebSocket connections ccxt.pro opens, answering from recorded messages.

``RecordedVenue.install`` replaces ``Client.create_connection`` of ccxt's WebSocket client
(``ccxt/async_support/base/ws/client.py``), the one place that dials aiohttp. Everything
else is ccxt.pro's own: ``watch`` registers the futures and sends the subscribe request,
the client's receive loop hands each frame to ``handle_message``, and the exchange parses
it and resolves the watch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from aiohttp import WSMessage, WSMsgType
from ccxt.async_support.base.ws.client import Client

Answer = Callable[[dict], list[str]]


class RecordedSocket:
    """Duck-types aiohttp's ``ClientWebSocketResponse`` as far as ccxt's client uses it:
    each request the client sends is answered with the frames ``answer`` gives for it."""

    _conn = None  # no aiohttp read buffer to drain

    def __init__(self, url: str, answer: Answer) -> None:
        self.url = url
        self.answer = answer
        self.sent: list[dict] = []
        self.inbox: asyncio.Queue[WSMessage] = asyncio.Queue()
        self.closed = False

    def push(self, frame: str) -> None:
        """Deliver one text frame as the venue would."""
        self.inbox.put_nowait(WSMessage(WSMsgType.TEXT, frame, None))

    async def receive(self) -> WSMessage:
        return await self.inbox.get()

    async def send_str(self, text: str) -> None:
        request = json.loads(text)
        self.sent.append(request)
        for frame in self.answer(request):
            self.push(frame)

    async def ping(self, message: bytes = b"") -> None:
        self.inbox.put_nowait(WSMessage(WSMsgType.PONG, message, None))

    async def pong(self, message: bytes = b"") -> None:
        return None

    async def close(self, *args: object, **kwargs: object) -> bool:
        self.closed = True
        return True


class RecordedVenue:
    """Every connection ccxt.pro opens while installed, each answering with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sockets: list[RecordedSocket] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> RecordedVenue:
        """Make ccxt.pro's clients connect here for the rest of the test."""

        async def connect(client: Client, session: object) -> RecordedSocket:
            socket = RecordedSocket(client.url, self.answer)
            self.sockets.append(socket)
            return socket

        monkeypatch.setattr(Client, "create_connection", connect)
        return self


def binance_answer(streams: dict[str, list[dict]], extra: tuple[str, ...] = ()) -> Answer:
    """Binance's reply to ``{"method": "SUBSCRIBE", "params": [...], "id": n}``: the
    ``{"result": null, "id": n}`` confirmation, then the recorded events of each stream
    (``btcusdt@ticker``, ``btcusdt@trade``), then the raw ``extra`` frames."""

    def answer(request: dict) -> list[str]:
        frames = [json.dumps({"result": None, "id": request["id"]})]
        for stream in request.get("params", []):
            frames.extend(json.dumps(event) for event in streams.get(stream, []))
        return [*frames, *extra]

    return answer


def kraken_answer(channels: dict[str, list[dict]]) -> Answer:
    """Kraken's v2 reply to ``{"method": "subscribe", "params": {"channel", "symbol"}}``: a
    ``success`` acknowledgement per symbol, then the recorded messages of that channel
    whose data is for a subscribed symbol."""

    def answer(request: dict) -> list[str]:
        channel, symbols = request["params"]["channel"], request["params"]["symbol"]
        frames = [
            json.dumps(
                {
                    "method": "subscribe",
                    "req_id": request["req_id"],
                    "result": {"channel": channel, "symbol": symbol},
                    "success": True,
                    "time_in": "2025-11-26T10:00:00.000000Z",
                    "time_out": "2025-11-26T10:00:00.000100Z",
                }
            )
            for symbol in symbols
        ]
        frames.extend(
            json.dumps(message)
            for message in channels.get(channel, [])
            if message["data"][0]["symbol"] in symbols
        )
        return frames

    return answer
