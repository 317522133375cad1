"""Helpers of the gateway tests: a gateway on a real uvicorn server, and WebSocket and HTTP
clients of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
import websockets
from fastapi import FastAPI

from gateway.app import create_app
from runtime.settings import Settings
from schemas import Quote

SPEC_PRICE_FIELDS = [
    "symbol",
    "price",
    "change",
    "change_percent",
    "volume",
    "timestamp",
    "provider",
    "confidence",
]
QUOTE_FIELDS = [*SPEC_PRICE_FIELDS, "bid", "ask", "bid_size", "ask_size", "providers", "scores"]


@contextlib.asynccontextmanager
async def serve_gateway(settings: Settings, wait_ready: bool = True) -> AsyncIterator[FastAPI]:
    """Run the gateway of ``settings`` on a real uvicorn server until the block ends.

    With ``wait_ready`` the block starts once the gateway reads its topics.
    """
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.gateway_port,
        log_level="warning",
        ws="websockets-sansio",
        lifespan="on",
        ws_max_size=4 * settings.max_message_bytes,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    if wait_ready:
        await asyncio.wait_for(app.state.feed.ready.wait(), 30)
    try:
        yield app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def until_known(app: FastAPI, *quotes: Quote) -> None:
    """Wait until the gateway's feed has taken in ``quotes`` (they may sit in different
    partitions, so a snapshot taken too early could carry only some of them)."""
    book = app.state.market.quotes
    for _ in range(500):
        latest = [book.latest(q.symbol) for q in quotes]
        if all(
            have is not None and have.seq >= q.seq for have, q in zip(latest, quotes, strict=True)
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the gateway never took in the published quotes")


async def receive(ws: Any, kind: str, within: float = 10.0) -> dict:
    """The next message of type ``kind`` within ``within`` seconds, skipping heartbeats."""
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message
            assert message["type"] == "heartbeat", message


async def first_answer(port: int, symbols: list[str]) -> dict:
    """The first frame a price subscription of ``symbols`` gets on a new connection."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(json.dumps({"type": "subscribe", "stream_type": "price", "symbols": symbols}))
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def fetch_document(port: int) -> dict:
    """The gateway's AsyncAPI document."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/asyncapi.json")
    assert response.status_code == 200
    return response.json()
