"""One WebSocket connection: its subscriptions, its paced data and its bounded outbox.

Every frame to the client goes through one bounded queue drained by one writer task, so
an ack always precedes its subscription's data and nothing of a subscription follows its
``unsubscribe_ack``. A client that lets the queue fill up gets ``SLOW_CONSUMER`` and close
code 1008; other clients never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from fiml.settings import Settings
from gateway.latest import ITEM_BUILDERS, LatestQuotes
from gateway.protocol import (
    ErrorCode,
    PingRequest,
    ProtocolError,
    SubscribeRequest,
    UnsubscribeRequest,
    error_frame,
    parse_client_message,
    utc_timestamp,
)
from gateway.registry import ConnectionRegistry
from gateway.subscription import Subscription

log = logging.getLogger("fiml.gateway")

POLICY_VIOLATION = 1008


class SlowConsumer(Exception):
    """The client's outbox is full."""


class ClientSession:
    """Serve one accepted WebSocket until it closes."""

    def __init__(self, websocket: WebSocket, latest: LatestQuotes, registry: ConnectionRegistry,
                 settings: Settings) -> None:
        self.websocket = websocket
        self.latest = latest
        self.registry = registry
        self.settings = settings
        self.outbox: asyncio.Queue[str] = asyncio.Queue(settings.send_queue_limit)
        self.subscriptions: dict[str, Subscription] = {}
        self.pacers: dict[str, asyncio.Task[None]] = {}
        self.slow = asyncio.Event()

    async def serve(self, first: SubscribeRequest | None = None) -> None:
        """Run until the client leaves; ``first`` is subscribed before any client message."""
        self.registry.add(self)
        background = [asyncio.create_task(self._write()), asyncio.create_task(self._heartbeat())]
        reader = asyncio.create_task(self._read(first))
        slow = asyncio.create_task(self.slow.wait())
        try:
            await asyncio.wait([reader, slow, background[0]], return_when=asyncio.FIRST_COMPLETED)
            if self.slow.is_set():
                background[0].cancel()
                await self._close_slow_consumer()
        finally:
            for task in [reader, slow, *background, *self.pacers.values()]:
                task.cancel()
            self.subscriptions.clear()
            self.registry.remove(self)

    def send(self, text: str) -> None:
        """Queue a frame for the client; a full queue marks it a slow consumer."""
        if self.slow.is_set():
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.slow.set()

    async def _read(self, first: SubscribeRequest | None) -> None:
        if first is not None:
            self._subscribe(first)
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    self.send(error_frame(ErrorCode.INVALID_JSON,
                                          "binary frames are not supported; send JSON text"))
                    continue
                self._handle(text)

    def _handle(self, text: str) -> None:
        try:
            request = parse_client_message(text)
            if isinstance(request, SubscribeRequest):
                self._subscribe(request)
            elif isinstance(request, UnsubscribeRequest):
                self._unsubscribe(request)
            elif isinstance(request, PingRequest):
                self.send(orjson.dumps({"type": "pong", "timestamp": utc_timestamp()}).decode())
        except ProtocolError as error:
            self.send(error_frame(error.code, error.message))
        except Exception:
            log.exception("failed to process a client message")
            self.send(error_frame(ErrorCode.PROCESSING_ERROR, "the message could not be processed"))

    def _subscribe(self, request: SubscribeRequest) -> None:
        if request.stream_type not in ITEM_BUILDERS:
            raise ProtocolError(
                ErrorCode.SUBSCRIPTION_ERROR,
                f"Failed to create subscription: stream_type {request.stream_type.value!r} "
                f"is not available yet (available: {', '.join(sorted(ITEM_BUILDERS))})",
            )
        subscription = Subscription(request.stream_type, list(request.symbols),
                                    request.interval_ms)
        self.subscriptions[subscription.id] = subscription
        self.send(orjson.dumps({
            "type": "subscription_ack",
            "stream_type": subscription.stream_type.value,
            "symbols": subscription.symbols,
            "subscription_id": subscription.id,
            "interval_ms": subscription.interval_ms,
            "timestamp": utc_timestamp(),
        }).decode())
        self.pacers[subscription.id] = asyncio.create_task(self._pace(subscription))

    def _unsubscribe(self, request: UnsubscribeRequest) -> None:
        matching = [sub for sub in self.subscriptions.values()
                    if sub.stream_type == request.stream_type]
        removed: dict[str, None] = {}
        ended = []
        for subscription in matching:
            if request.symbols is None:
                removed.update(dict.fromkeys(subscription.symbols))
                subscription.symbols = []
            else:
                removed.update(dict.fromkeys(subscription.remove_symbols(request.symbols)))
            if not subscription.symbols:
                self.pacers.pop(subscription.id).cancel()
                del self.subscriptions[subscription.id]
                ended.append(subscription.id)
        if not removed:
            wanted = "any symbol" if request.symbols is None else ", ".join(request.symbols)
            raise ProtocolError(
                ErrorCode.UNSUBSCRIBE_ERROR,
                f"Failed to unsubscribe: no {request.stream_type.value} subscription has {wanted}",
            )
        self.send(orjson.dumps({
            "type": "unsubscribe_ack",
            "stream_type": request.stream_type.value,
            "symbols": list(removed),
            "subscription_ids": ended,
            "timestamp": utc_timestamp(),
        }).decode())

    async def _pace(self, subscription: Subscription) -> None:
        """Send the snapshot now, then changed values on a fixed, non-drifting cadence."""
        loop = asyncio.get_running_loop()
        interval = subscription.interval_ms / 1000
        start = loop.time()
        slot = 0
        while True:
            items = subscription.changed_items(self.latest)
            if items:
                self.send(subscription.data_message(items))
            slot += 1
            late = loop.time() - (start + slot * interval)
            if late > 0:
                slot += math.ceil(late / interval)
            await asyncio.sleep(start + slot * interval - loop.time())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            self.send(orjson.dumps({
                "type": "heartbeat",
                "timestamp": utc_timestamp(),
                "active_subscriptions": len(self.subscriptions),
            }).decode())

    async def _write(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await self.websocket.send_text(await self.outbox.get())

    async def _close_slow_consumer(self) -> None:
        log.warning("closing a slow consumer: %d frames queued", self.outbox.qsize())
        frame = error_frame(ErrorCode.SLOW_CONSUMER,
                            f"more than {self.settings.send_queue_limit} messages waited for "
                            "this client; closing")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.send_text(frame), 1.0)
            await asyncio.wait_for(self.websocket.close(POLICY_VIOLATION), 1.0)
