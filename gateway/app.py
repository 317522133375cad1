"""The FastAPI application: /ws/stream, /ws/prices/{symbols}, GET /ws/connections, the
history endpoints GET /v1/candles/{symbol} and GET /v1/quotes/{symbol}, the provider
statuses GET /v1/providers, GET /metrics, the health endpoints GET /healthz and GET /readyz,
and the browser dashboard at /."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import typing
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from gateway.asyncapi import asyncapi_document
from gateway.clock import Clocks
from gateway.dashboard import mount_dashboard
from gateway.demand import DemandPublisher
from gateway.feed import MarketFeed
from gateway.history import history_router
from gateway.protocol import (
    DEFAULT_INTERVAL_MS,
    ErrorCode,
    ProtocolError,
    SubscribeRequest,
    error_frame,
    validate_message,
)
from gateway.providers import ProviderStatuses, providers_router
from gateway.registry import ConnectionRegistry
from gateway.security import (
    TRY_AGAIN_LATER,
    UNAUTHORIZED_CLOSE,
    api_key_accepted,
    origin_allowed,
)
from gateway.session import POLICY_VIOLATION, ClientSession, Shared
from gateway.stores import MarketStores
from gateway.watcher import watch_connections
from runtime.catalog import Catalog, ExchangeMarkets, needs_exchange_markets
from runtime.metrics import CONNECTIONS, CONTENT_TYPE, SUBSCRIPTIONS, exposition
from runtime.settings import Settings


def prices_path_request(symbols: str) -> SubscribeRequest:
    """The price subscription that ``/ws/prices/{symbols}`` stands for, or ProtocolError."""
    request = {
        "type": "subscribe",
        "stream_type": "price",
        "symbols": symbols.split(","),
        "interval_ms": DEFAULT_INTERVAL_MS,
    }
    return typing.cast(SubscribeRequest, validate_message(request))


def create_app(settings: Settings) -> FastAPI:
    """The gateway for this configuration; the Kafka feed runs while the app runs."""
    market = MarketStores()
    registry = ConnectionRegistry()
    statuses = ProviderStatuses()
    feed = MarketFeed(settings, market, statuses)
    demand = DemandPublisher(settings, registry)
    exchange_markets = ExchangeMarkets()
    shared = Shared(
        settings,
        market,
        registry,
        statuses,
        Catalog.from_settings(settings, exchange_markets),
        Clocks(),
    )
    CONNECTIONS.set_function(lambda: len(registry.connections))
    SUBSCRIPTIONS.set_function(registry.subscription_count)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(feed.run()),
            asyncio.create_task(demand.run()),
            asyncio.create_task(watch_connections(registry)),
        ]
        if needs_exchange_markets(settings):  # ccxt is imported only when its markets matter
            from runtime.exchanges import learn_ccxt_markets

            tasks.append(asyncio.create_task(learn_ccxt_markets(settings, exchange_markets)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            shared.clocks.close()

    app = FastAPI(title="FIML streaming gateway", lifespan=lifespan)
    app.state.feed = feed
    app.state.registry = registry
    app.state.market = market
    app.state.statuses = statuses
    app.state.exchange_markets = exchange_markets
    app.include_router(history_router(settings))
    app.include_router(providers_router(settings, statuses))
    mount_dashboard(app, settings)

    async def admit(websocket: WebSocket) -> bool:
        """Apply the access rules; refuse the connection with the right frame and code."""
        if not origin_allowed(settings, websocket):
            await websocket.close(POLICY_VIOLATION)
            return False
        await websocket.accept()
        refusal = None
        if not api_key_accepted(settings, websocket):
            refusal = (ErrorCode.UNAUTHORIZED, "a valid API key is required", UNAUTHORIZED_CLOSE)
        elif settings.max_connections and len(registry.connections) >= settings.max_connections:
            refusal = (
                ErrorCode.PROCESSING_ERROR,
                f"connection limit of {settings.max_connections} reached; retry later",
                TRY_AGAIN_LATER,
            )
        if refusal is None:
            return True
        code, message, close_code = refusal
        await websocket.send_text(error_frame(code, message))
        await websocket.close(close_code)
        return False

    @app.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        if await admit(websocket):
            await ClientSession(websocket, shared).serve()

    @app.websocket("/ws/prices/{symbols:path}")
    async def prices(websocket: WebSocket, symbols: str) -> None:
        if not await admit(websocket):
            return
        try:
            request = prices_path_request(symbols)
        except ProtocolError as error:
            await websocket.send_text(error_frame(error.code, error.message))
            await websocket.close(POLICY_VIOLATION)
            return
        await ClientSession(websocket, shared).serve(first=request)

    @app.get("/asyncapi.json")
    async def asyncapi(request: Request) -> dict[str, object]:
        """The AsyncAPI 3.0 document of the WebSocket protocol."""
        host = request.headers.get("host") or f"{settings.gateway_host}:{settings.gateway_port}"
        return asyncapi_document(importlib.metadata.version("fiml-streaming"), host)

    @app.get("/ws/connections", response_model=None)
    async def connections(request: Request) -> dict[str, object] | JSONResponse:
        """Open WebSocket connections, their subscriptions and the symbols subscribed now."""
        if not api_key_accepted(settings, request):
            return JSONResponse({"detail": "a valid API key is required"}, status_code=401)
        return registry.summary()

    @app.get("/metrics", response_model=None)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this gateway process."""
        if not api_key_accepted(settings, request):
            return JSONResponse({"detail": "a valid API key is required"}, status_code=401)
        return Response(exposition(), media_type=CONTENT_TYPE)

    @app.get("/healthz", response_model=None)
    async def healthz() -> dict[str, str] | JSONResponse:
        """Liveness: the Kafka feed keeps up; 503 once records have waited
        FIML_CONSUMER_STALL_SECONDS for it while it did not move."""
        if feed.progress.alive():
            return {"status": "ok"}
        return JSONResponse({"status": "stalled"}, status_code=503)

    @app.get("/readyz", response_model=None)
    async def readyz() -> dict[str, str] | JSONResponse:
        """Readiness: the Kafka feed has its partitions assigned and is connected to a
        broker."""
        if feed.ready.is_set() and feed.connected():
            return {"status": "ready"}
        return JSONResponse({"status": "not ready"}, status_code=503)

    return app
