"""One WebSocket connection: its reader, its writer and its bounded outbox.

Every frame to the client goes through one bounded queue drained by one writer task, so an
ack always precedes its subscription's data and nothing of a subscription follows its
``unsubscribe_ack``. Each subscription has at most one data message waiting at a time;
while it waits, newer values conflate (trades accumulate, none is dropped). A client whose
writes block longer than ``slow_consumer_seconds``, or whose queue fills, gets
``SLOW_CONSUMER`` and close code 1008; other clients never wait for it.

Its protocol rules are ``session_state.py`` (pure), its frames ``frames.py``, what it tells
of its symbols ``staleness.py``; shared clocks pace it (``clock.py``), one watcher watches it
(``watcher.py``), and what every connection shares is one ``Shared`` (``shared.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import frames
from gateway.limits import TokenBucket, new_symbol_limit
from gateway.outbox import Outbox
from gateway.protocol import (
    ClientMessage,
    CloseCode,
    ErrorCode,
    PingRequest,
    ProtocolError,
    SubscribeRequest,
    UnsubscribeRequest,
    error_frame,
    parse_client_message,
)
from gateway.replaying import ReplayRun
from gateway.session_state import QUOTE_STREAMS, SessionState
from gateway.shared import Shared
from gateway.staleness import SymbolWatch
from gateway.stores import TradesLost
from gateway.subscription import Subscription
from runtime.clock import now_micros
from runtime.metrics import FRAMES_SENT, LATENCY, SEND_QUEUE_DEPTH, SLOW_CONSUMER_DROPS

log = logging.getLogger("fiml.gateway")


class ClientSession:
    """Serve one accepted WebSocket until it closes."""

    def __init__(self, websocket: WebSocket, shared: Shared) -> None:
        self.websocket = websocket
        self.shared = shared
        self.market = shared.market
        self.settings = settings = shared.settings
        self.state = SessionState(
            shared.catalog,
            settings.max_subscriptions_per_connection,
            settings.max_replays_per_connection,
            settings.max_symbols_per_connection,
            shared.admission.replays,
            new_symbol_limit(settings.max_new_symbols_per_minute),
        )
        self.symbols = SymbolWatch(settings.stale_after_seconds)
        self.outbox: Outbox[tuple[str, Subscription | None]] = Outbox(settings.send_queue_limit)
        self.replays: dict[str, asyncio.Task[None]] = {}
        self.sending_since: float | None = None
        self.closing: tuple[str, int] | None = None
        self.writer: asyncio.Task[None] | None = None
        rate = settings.client_messages_per_second
        self.inbound = TokenBucket(rate, 2 * rate, time.monotonic())
        self.last_rate_report = -math.inf

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        """The open subscriptions, by id."""
        return self.state.subscriptions

    async def serve(self, first: SubscribeRequest | None = None) -> None:
        """Run until the client leaves; ``first`` is subscribed before any client message."""
        clocks = self.shared.clocks
        self.writer = writer = asyncio.create_task(self._write())
        reader = asyncio.create_task(self._read(first))
        self.shared.registry.add(self)
        clocks.start(self, self.settings.heartbeat_interval, self._heartbeat)
        try:
            await asyncio.wait([reader, writer], return_when=asyncio.FIRST_COMPLETED)
            if self.closing is not None:
                await self._close(*self.closing)
        finally:
            for task in [reader, writer, *self.replays.values()]:
                task.cancel()
            clocks.stop(self)
            for subscription_id in self.subscriptions:
                clocks.stop(subscription_id)
            self.subscriptions.clear()
            self.shared.registry.remove(self)

    def send(self, text: str, subscription: Subscription | None = None) -> None:
        """Queue a frame for the client; a full queue makes it a slow consumer."""
        if self.closing is not None:
            return
        SEND_QUEUE_DEPTH.observe(self.outbox.qsize())
        try:
            self.outbox.put_nowait((text, subscription))
        except asyncio.QueueFull:
            self.close_with(
                ErrorCode.SLOW_CONSUMER,
                f"more than {self.settings.send_queue_limit} messages waited for this client",
                CloseCode.POLICY_VIOLATION,
            )

    def close_with(self, code: ErrorCode, message: str, close_code: int) -> None:
        """End the connection with an error frame and a close code."""
        if self.closing is None:
            log.info("closing a connection: %s: %s", code.value, message)
            if code == ErrorCode.SLOW_CONSUMER:
                SLOW_CONSUMER_DROPS.inc()
            self.closing = (error_frame(code, message), close_code)
            if self.writer is not None:
                self.writer.cancel()

    async def _read(self, first: SubscribeRequest | None) -> None:
        if first is not None:
            self._apply(first)
        with contextlib.suppress(WebSocketDisconnect):
            while self.closing is None:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                self._receive(message.get("text"))

    def _receive(self, text: str | None) -> None:
        limit = self.settings.max_message_bytes
        if text is not None and len(text) > limit // 4 and len(text.encode()) > limit:
            self.close_with(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"a message may have at most {limit} bytes",
                CloseCode.MESSAGE_TOO_BIG,
            )
            return
        now = time.monotonic()
        if not self.inbound.take(now):
            if now - self.last_rate_report >= 1.0:
                self.last_rate_report = now
                rate = self.settings.client_messages_per_second
                self.send(
                    error_frame(
                        ErrorCode.RATE_LIMITED,
                        f"more than {rate:g} messages per second; messages are being dropped",
                    )
                )
            return
        if text is None:
            self.send(
                error_frame(
                    ErrorCode.INVALID_JSON, "binary frames are not supported; send JSON text"
                )
            )
            return
        try:
            self._apply(parse_client_message(text))
        except ProtocolError as error:
            self.send(error_frame(error.code, error.message))

    def _apply(self, request: ClientMessage) -> None:
        """Carry out a valid request; refusals and failures become error frames."""
        try:
            if isinstance(request, SubscribeRequest):
                self._subscribe(request)
            elif isinstance(request, UnsubscribeRequest):
                self._unsubscribe(request)
            elif isinstance(request, PingRequest):
                self.send(frames.pong())
        except ProtocolError as error:
            self.send(error_frame(error.code, error.message))
        except Exception:
            log.exception("failed to process a client message")
            self.send(error_frame(ErrorCode.PROCESSING_ERROR, "the message could not be processed"))

    def _subscribe(self, request: SubscribeRequest) -> None:
        subscription = self.state.subscribe(request, time.monotonic())
        self.shared.registry.changed()
        ack = frames.subscription_ack(subscription, request)
        if subscription.replay:
            task = asyncio.create_task(self._replay(subscription, request, ack))
            task.add_done_callback(lambda _: self.state.replay_slots.give())
            self.replays[subscription.id] = task
            return
        self.send(ack)
        if subscription.stream_type in QUOTE_STREAMS:
            self.symbols.watch(subscription.symbols, time.monotonic())
        self._pace(subscription)
        self.shared.clocks.start(
            subscription.id,
            subscription.interval_ms / 1000,
            functools.partial(self._pace, subscription),
        )

    def _unsubscribe(self, request: UnsubscribeRequest) -> None:
        unsubscribed = self.state.unsubscribe(request)
        for subscription in unsubscribed.ended:
            replay = self.replays.pop(subscription.id, None)
            if replay is None:
                self.shared.clocks.stop(subscription.id)
            else:
                replay.cancel()
        self.shared.registry.changed()
        self.symbols.keep(self.state.quote_symbols())
        ended = [subscription.id for subscription in unsubscribed.ended]
        self.send(frames.unsubscribe_ack(request.stream_type, unsubscribed.symbols, ended))

    async def _replay(
        self, subscription: Subscription, request: SubscribeRequest, ack: str
    ) -> None:
        """Run a replay subscription; it ends with its replay (with ``end``) or when cancelled."""
        try:
            await ReplayRun(
                self.settings, subscription, request, self.send, self.shared.readers
            ).run(ack)
        finally:
            self.state.end(subscription.id)
            self.replays.pop(subscription.id, None)
            self.shared.registry.changed()

    def _pace(self, subscription: Subscription) -> None:
        """Send what changed since the last data message, unless that one still waits:
        at subscribe (the snapshot), then at each slot of its cadence."""
        if subscription.in_flight:
            return
        try:
            items = self.market.store_for(subscription.stream_type).collect(subscription)
        except TradesLost as lost:
            self.close_with(ErrorCode.SLOW_CONSUMER, str(lost), CloseCode.POLICY_VIOLATION)
            return
        if items:
            subscription.in_flight = True
            if subscription.stream_type in QUOTE_STREAMS:
                subscription.ts_ingest = self.market.quotes.newest_ts_ingest(subscription.symbols)
            self.send(subscription.data_message(items), subscription)

    def _heartbeat(self) -> None:
        self.send(frames.heartbeat(len(self.subscriptions)))

    def watch(self, now: float) -> None:
        """Close a client whose writes block too long; report symbols going stale and back,
        and provider status changes (called by the gateway's watcher)."""
        blocked = self.sending_since is not None and now - self.sending_since
        if blocked and blocked > self.settings.slow_consumer_seconds:
            self.close_with(
                ErrorCode.SLOW_CONSUMER,
                f"a message waited {blocked:.0f} s for this client",
                CloseCode.POLICY_VIOLATION,
            )
        limit = self.symbols.stale_after
        if self.symbols.due(now):
            for symbol, stale in self.symbols.changes(now, self.market.quotes.received_at):
                self.send(frames.staleness(symbol, stale, limit))
        statuses = self.shared.statuses
        for notice in self.symbols.notices(
            statuses.version, self.market.quotes.providers, statuses.state
        ):
            self.send(frames.provider_notice(notice, statuses.latest))

    async def _write(self) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                text, subscription = await self.outbox.get()
                self.sending_since = time.monotonic()
                await self.websocket.send_text(text)
                self.sending_since = None
                FRAMES_SENT.inc()
                if subscription is not None:
                    subscription.in_flight = False
                    if subscription.ts_ingest is not None:
                        LATENCY.observe((now_micros() - subscription.ts_ingest) / 1e6)
                        subscription.ts_ingest = None

    async def _close(self, frame: str, code: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.send_text(frame), 1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code), 1.0)
