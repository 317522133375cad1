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
from gateway.security import SUBPROTOCOL, api_key_accepted, offered_subprotocols, origin_allowed
from gateway.shared import Shared


def prices_path_request(symbols: str) -> SubscribeRequest:
    """The price subscription that ``/ws/prices/{symbols}`` stands for, or ProtocolError."""
    request = {
        "type": "subscribe",
        "stream_type": "price",
        "symbols": symbols.split(","),
        "interval_ms": DEFAULT_INTERVAL_MS,
    }
    return typing.cast(SubscribeRequest, validate_message(request))


def client_address(websocket: WebSocket) -> str:
    """The client's address, as the per-client connection cap counts it."""
    return websocket.client.host if websocket.client else "unknown"


def refusal(shared: Shared, websocket: WebSocket) -> tuple[ErrorCode, str, CloseCode] | None:
    """Why an accepted connection may not stay (no valid API key, a connection cap), with
    the close code; None if it may (it then counts against the caps until it leaves)."""
    if not api_key_accepted(shared.settings, websocket):
        return ErrorCode.UNAUTHORIZED, "a valid API key is required", CloseCode.UNAUTHORIZED
    refused = shared.admission.refuse_connection(client_address(websocket))
    if refused is not None:
        return ErrorCode.PROCESSING_ERROR, refused, CloseCode.TRY_AGAIN_LATER
    return None


async def admit(shared: Shared, websocket: WebSocket) -> bool:
    """Apply the access rules; refuse the connection with the right frame and code. The
    ``fiml`` subprotocol is chosen when the client offers it (a browser sending its key as a
    subprotocol must get one of its own back)."""
    if not origin_allowed(shared.settings, websocket):
        await websocket.close(CloseCode.POLICY_VIOLATION)
        return False
    offered = SUBPROTOCOL in offered_subprotocols(websocket)
    await websocket.accept(subprotocol=SUBPROTOCOL if offered else None)
    refused = refusal(shared, websocket)
    if refused is None:
        return True
    code, message, close_code = refused
    await websocket.send_text(error_frame(code, message))
    await websocket.close(close_code)
    return False


async def serve(
    shared: Shared, book: AlertBook, websocket: WebSocket, first: SubscribeRequest | None
) -> None:
    """Serve an admitted connection; it stops counting against the caps when it ends."""
    try:
        await AlertingSession(websocket, shared, book).serve(first)
    finally:
        shared.admission.leave(client_address(websocket))


def stream_router(shared: Shared, book: AlertBook) -> APIRouter:
    """The WebSocket endpoints of one gateway app, and ``GET /asyncapi.json``."""
    router = APIRouter()
    settings = shared.settings

    @router.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        if await admit(shared, websocket):
            await serve(shared, book, websocket, None)

    @router.websocket("/ws/prices/{symbols:path}")
    async def prices(websocket: WebSocket, symbols: str) -> None:
        if not await admit(shared, websocket):
            return
        try:
            request = prices_path_request(symbols)
        except ProtocolError as error:
            shared.admission.leave(client_address(websocket))
            await websocket.send_text(error_frame(error.code, error.message))
            await websocket.close(CloseCode.POLICY_VIOLATION)
            return
        await serve(shared, book, websocket, request)

    @router.get("/asyncapi.json")
    async def asyncapi(request: Request) -> dict[str, object]:
        """The AsyncAPI 3.0 document of the WebSocket protocol."""
        host = request.headers.get("host") or f"{settings.gateway_host}:{settings.gateway_port}"
        return asyncapi_document(importlib.metadata.version("fiml-streaming"), host)

    return router
