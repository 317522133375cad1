"""The WebSocket endpoints, ``/ws/stream`` and ``/ws/prices/{symbols}``, and the AsyncAPI
document of their protocol (docs/protocol.md)."""

from __future__ import annotations

import importlib.metadata
import typing

from fastapi import APIRouter, Request, WebSocket

from gateway.alert_session import AlertingSession
from gateway.alerts import AlertBook
from gateway.asyncapi import asyncapi_document
from gateway.protocol import (
    DEFAULT_INTERVAL_MS,
    CloseCode,
    ErrorCode,
    ProtocolError,
    SubscribeRequest,
    error_frame,
    validate_message,
)
from gateway.security import api_key_accepted, origin_allowed
from gateway.session import Shared


def prices_path_request(symbols: str) -> SubscribeRequest:
    """The price subscription that ``/ws/prices/{symbols}`` stands for, or ProtocolError."""
    request = {
        "type": "subscribe",
        "stream_type": "price",
        "symbols": symbols.split(","),
        "interval_ms": DEFAULT_INTERVAL_MS,
    }
    return typing.cast(SubscribeRequest, validate_message(request))


def refusal(shared: Shared, websocket: WebSocket) -> tuple[ErrorCode, str, CloseCode] | None:
    """Why an accepted connection may not stay (no valid API key, the connection cap), with
    the close code; None if it may."""
    settings = shared.settings
    if not api_key_accepted(settings, websocket):
        return ErrorCode.UNAUTHORIZED, "a valid API key is required", CloseCode.UNAUTHORIZED
    cap = settings.max_connections
    if cap and len(shared.registry.connections) >= cap:
        message = f"connection limit of {cap} reached; retry later"
        return ErrorCode.PROCESSING_ERROR, message, CloseCode.TRY_AGAIN_LATER
    return None


async def admit(shared: Shared, websocket: WebSocket) -> bool:
    """Apply the access rules; refuse the connection with the right frame and code."""
    if not origin_allowed(shared.settings, websocket):
        await websocket.close(CloseCode.POLICY_VIOLATION)
        return False
    await websocket.accept()
    refused = refusal(shared, websocket)
    if refused is None:
        return True
    code, message, close_code = refused
    await websocket.send_text(error_frame(code, message))
    await websocket.close(close_code)
    return False


def stream_router(shared: Shared, book: AlertBook) -> APIRouter:
    """The WebSocket endpoints of one gateway app, and ``GET /asyncapi.json``."""
    router = APIRouter()
    settings = shared.settings

    @router.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        if await admit(shared, websocket):
            await AlertingSession(websocket, shared, book).serve()

    @router.websocket("/ws/prices/{symbols:path}")
    async def prices(websocket: WebSocket, symbols: str) -> None:
        if not await admit(shared, websocket):
            return
        try:
            request = prices_path_request(symbols)
        except ProtocolError as error:
            await websocket.send_text(error_frame(error.code, error.message))
            await websocket.close(CloseCode.POLICY_VIOLATION)
            return
        await AlertingSession(websocket, shared, book).serve(first=request)

    @router.get("/asyncapi.json")
    async def asyncapi(request: Request) -> dict[str, object]:
        """The AsyncAPI 3.0 document of the WebSocket protocol."""
        host = request.headers.get("host") or f"{settings.gateway_host}:{settings.gateway_port}"
        return asyncapi_document(importlib.metadata.version("fiml-streaming"), host)

    return router
