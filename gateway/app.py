"""The FastAPI application: /ws/stream, /ws/prices/{symbols} and GET /ws/connections."""

from __future__ import annotations

import asyncio
import contextlib
import typing
from collections.abc import AsyncIterator

from fastapi import FastAPI, WebSocket

from fiml.settings import Settings
from gateway.feed import QuoteFeed
from gateway.latest import LatestQuotes
from gateway.protocol import (
    DEFAULT_INTERVAL_MS,
    ProtocolError,
    SubscribeRequest,
    error_frame,
    validate_message,
)
from gateway.registry import ConnectionRegistry
from gateway.session import POLICY_VIOLATION, ClientSession


def prices_path_request(symbols: str) -> SubscribeRequest:
    """The price subscription that ``/ws/prices/{symbols}`` stands for, or ProtocolError."""
    request = {"type": "subscribe", "stream_type": "price", "symbols": symbols.split(","),
               "interval_ms": DEFAULT_INTERVAL_MS}
    return typing.cast(SubscribeRequest, validate_message(request))


def create_app(settings: Settings) -> FastAPI:
    """The gateway for this configuration; the Kafka feed runs while the app runs."""
    latest = LatestQuotes()
    registry = ConnectionRegistry()
    feed = QuoteFeed(settings, latest)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(feed.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="FIML streaming gateway", lifespan=lifespan)
    app.state.feed = feed
    app.state.registry = registry

    @app.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await ClientSession(websocket, latest, registry, settings).serve()

    @app.websocket("/ws/prices/{symbols}")
    async def prices(websocket: WebSocket, symbols: str) -> None:
        await websocket.accept()
        try:
            request = prices_path_request(symbols)
        except ProtocolError as error:
            await websocket.send_text(error_frame(error.code, error.message))
            await websocket.close(POLICY_VIOLATION)
            return
        await ClientSession(websocket, latest, registry, settings).serve(first=request)

    @app.get("/ws/connections")
    async def connections() -> dict[str, object]:
        """Open WebSocket connections, their subscriptions and the symbols subscribed now."""
        return registry.summary()

    return app
