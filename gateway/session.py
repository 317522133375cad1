"""One WebSocket connection: its subscriptions, its paced data and its bounded outbox.

Every frame to the client goes through one bounded queue drained by one writer task, so an
ack always precedes its subscription's data and nothing of a subscription follows its
``unsubscribe_ack``. Each subscription has at most one data message waiting at a time;
while it waits, newer values conflate (trades accumulate, none is dropped). A client whose
writes block longer than ``slow_consumer_seconds``, or whose queue fills, gets
``SLOW_CONSUMER`` and close code 1008; other clients never wait for it.

A connection runs two tasks, its reader and its writer. Its subscriptions' data and its
heartbeat are paced by the gateway's shared clocks (``gateway/clock.py``) and it is watched
(slow writes, stale symbols, provider notices) by the gateway's one watcher
(``gateway/watcher.py``); what every connection shares is one :class:`Shared`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from dataclasses import dataclass

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.clock import Clocks
from gateway.limits import TokenBucket
from gateway.outbox import Outbox
from gateway.protocol import (
    ClientMessage,
    ErrorCode,
    PingRequest,
    ProtocolError,
    StreamType,
    SubscribeRequest,
    UnsubscribeRequest,
    error_frame,
    parse_client_message,
)
from gateway.providers import ProviderStatuses, notice_message, provider_notices
from gateway.registry import ConnectionRegistry
from gateway.replaying import ReplayRun, replay_ack_fields
from gateway.stores import MarketStores, TradesLost
from gateway.subscription import Subscription
from runtime.catalog import Catalog
from runtime.clock import now_iso, now_micros
from runtime.metrics import FRAMES_SENT, LATENCY, SEND_QUEUE_DEPTH, SLOW_CONSUMER_DROPS
from runtime.settings import Settings

log = logging.getLogger("fiml.gateway")

POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
QUOTE_STREAMS = frozenset({StreamType.PRICE, StreamType.QUOTE, StreamType.MULTI_ASSET})


def _json(message: dict[str, object]) -> str:
    return orjson.dumps(message).decode()


@dataclass(frozen=True)
class Shared:
    """What every connection of one gateway app shares."""

    settings: Settings
    market: MarketStores
    registry: ConnectionRegistry
    statuses: ProviderStatuses
    catalog: Catalog
    clocks: Clocks


class ClientSession:
    """Serve one accepted WebSocket until it closes."""

    def __init__(self, websocket: WebSocket, shared: Shared) -> None:
        self.websocket = websocket
        self.shared = shared
        self.market = shared.market
        self.settings = settings = shared.settings
        self.told: dict[tuple[str, str], str] = {}
        self.providers_checked: tuple[int, int] | None = None
        self.outbox: Outbox[tuple[str, Subscription | None]] = Outbox(settings.send_queue_limit)
        self.subscriptions: dict[str, Subscription] = {}
        self.replays: dict[str, asyncio.Task[None]] = {}
        self.watched_since: dict[str, float] = {}
        self.stale: set[str] = set()
        self.stale_check_at = math.inf
        self.sending_since: float | None = None
        self.closing: tuple[str, int] | None = None
        self.writer: asyncio.Task[None] | None = None
        now = time.monotonic()
        rate = settings.client_messages_per_second
        self.inbound = TokenBucket(rate, 2 * rate, now)
        self.last_rate_report = -math.inf

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
                POLICY_VIOLATION,
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
                MESSAGE_TOO_BIG,
            )
            return
        now = time.monotonic()
        if not self.inbound.take(now):
            if now - self.last_rate_report >= 1.0:
                self.last_rate_report = now
                self.send(
                    error_frame(
                        ErrorCode.RATE_LIMITED,
                        f"more than {self.settings.client_messages_per_second:g} messages per "
                        "second; messages are being dropped",
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
        self._handle(text)

    def _handle(self, text: str) -> None:
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
                self.send(_json({"type": "pong", "timestamp": now_iso()}))
        except ProtocolError as error:
            self.send(error_frame(error.code, error.message))
        except Exception:
            log.exception("failed to process a client message")
            self.send(error_frame(ErrorCode.PROCESSING_ERROR, "the message could not be processed"))

    def _subscribe(self, request: SubscribeRequest) -> None:
        catalog = self.shared.catalog
        unknown = [symbol for symbol in request.symbols if not catalog.can_serve(symbol)]
        if unknown:
            raise ProtocolError(
                ErrorCode.SUBSCRIPTION_ERROR,
                f"unknown symbol {', '.join(unknown)}: no provider serves it",
            )
        cap = self.settings.max_subscriptions_per_connection
        if cap and len(self.subscriptions) >= cap:
            raise ProtocolError(
                ErrorCode.SUBSCRIPTION_ERROR,
                f"Failed to create subscription: at most {cap} per connection",
            )
        replay = request.start is not None
        replay_cap = self.settings.max_replays_per_connection
        if (
            replay
            and replay_cap
            and sum(sub.replay for sub in self.subscriptions.values()) >= replay_cap
        ):
            raise ProtocolError(
                ErrorCode.REPLAY_ERROR,
                f"Failed to create subscription: at most {replay_cap} replays per connection",
            )
        subscription = Subscription(
            request.stream_type,
            list(request.symbols),
            request.interval_ms,
            request.timeframe,
            replay=replay,
        )
        self.subscriptions[subscription.id] = subscription
        self.shared.registry.changed()
        ack: dict[str, object] = {
            "type": "subscription_ack",
            "stream_type": subscription.stream_type.value,
            "symbols": subscription.symbols,
            "subscription_id": subscription.id,
            "interval_ms": subscription.interval_ms,
            "timestamp": now_iso(),
        }
        if subscription.stream_type == StreamType.OHLCV:
            ack["timeframe"] = subscription.timeframe
        if replay:
            ack.update(replay_ack_fields(request))
            self.replays[subscription.id] = asyncio.create_task(
                self._replay(subscription, request, _json(ack))
            )
            return
        self.send(_json(ack))
        if subscription.stream_type in QUOTE_STREAMS:
            now = time.monotonic()
            for symbol in subscription.symbols:
                self.watched_since.setdefault(symbol, now)
            self.stale_check_at = min(self.stale_check_at, now + self.settings.stale_after_seconds)
        self._pace(subscription)
        self.shared.clocks.start(
            subscription.id,
            subscription.interval_ms / 1000,
            functools.partial(self._pace, subscription),
        )

    def _unsubscribe(self, request: UnsubscribeRequest) -> None:
        removed: dict[str, None] = {}
        ended = []
        for subscription in list(self.subscriptions.values()):
            if subscription.stream_type != request.stream_type:
                continue
            if request.symbols is None:
                removed.update(dict.fromkeys(subscription.symbols))
                subscription.symbols = []
            else:
                removed.update(dict.fromkeys(subscription.remove_symbols(request.symbols)))
            if not subscription.symbols:
                replay = self.replays.pop(subscription.id, None)
                if replay is None:
                    self.shared.clocks.stop(subscription.id)
                else:
                    replay.cancel()
                del self.subscriptions[subscription.id]
                ended.append(subscription.id)
        self.shared.registry.changed()
        if not removed:
            wanted = "any symbol" if request.symbols is None else ", ".join(request.symbols)
            raise ProtocolError(
                ErrorCode.UNSUBSCRIBE_ERROR,
                f"Failed to unsubscribe: no {request.stream_type.value} subscription has {wanted}",
            )
        still_watched = self._quote_symbols()
        for symbol in list(self.watched_since):
            if symbol not in still_watched:
                del self.watched_since[symbol]
                self.stale.discard(symbol)
        self.send(
            _json(
                {
                    "type": "unsubscribe_ack",
                    "stream_type": request.stream_type.value,
                    "symbols": list(removed),
                    "subscription_ids": ended,
                    "timestamp": now_iso(),
                }
            )
        )

    async def _replay(
        self, subscription: Subscription, request: SubscribeRequest, ack: str
    ) -> None:
        """Run a replay subscription; it ends with its replay (with ``end``) or when cancelled."""
        try:
            await ReplayRun(self.settings, subscription, request, self.send).run(ack)
        finally:
            self.subscriptions.pop(subscription.id, None)
            self.replays.pop(subscription.id, None)
            self.shared.registry.changed()

    def _quote_symbols(self) -> set[str]:
        return {
            symbol
            for sub in self.subscriptions.values()
            if sub.stream_type in QUOTE_STREAMS
            for symbol in sub.symbols
        }

    def _pace(self, subscription: Subscription) -> None:
        """Send what changed since the last data message, unless that one still waits:
        at subscribe (the snapshot), then at each slot of its cadence."""
        if subscription.in_flight:
            return
        try:
            items = self.market.store_for(subscription.stream_type).collect(subscription)
        except TradesLost as lost:
            self.close_with(ErrorCode.SLOW_CONSUMER, str(lost), POLICY_VIOLATION)
            return
        if items:
            subscription.in_flight = True
            if subscription.stream_type in QUOTE_STREAMS:
                subscription.ts_ingest = self.market.quotes.newest_ts_ingest(subscription.symbols)
            self.send(subscription.data_message(items), subscription)

    def _heartbeat(self) -> None:
        self.send(
            _json(
                {
                    "type": "heartbeat",
                    "timestamp": now_iso(),
                    "active_subscriptions": len(self.subscriptions),
                }
            )
        )

    def watch(self, now: float) -> None:
        """Close a client whose writes block too long; report symbols going stale and back,
        and provider status changes (called by the gateway's watcher)."""
        blocked = self.sending_since is not None and now - self.sending_since
        if blocked and blocked > self.settings.slow_consumer_seconds:
            self.close_with(
                ErrorCode.SLOW_CONSUMER,
                f"a message waited {blocked:.0f} s for this client",
                POLICY_VIOLATION,
            )
        if self.stale or now >= self.stale_check_at:
            self._report_staleness(now)
        if (self.shared.statuses.version, len(self.watched_since)) != self.providers_checked:
            self._report_providers()

    def _report_staleness(self, now: float) -> None:
        """Report changes; note when the next symbol could go stale at the earliest."""
        limit = self.settings.stale_after_seconds
        received_at = self.market.quotes.received_at
        self.stale_check_at = math.inf
        for symbol, since in self.watched_since.items():
            last = max(received_at.get(symbol, since), since)
            is_stale = now - last > limit
            if not is_stale:
                self.stale_check_at = min(self.stale_check_at, last + limit)
            if is_stale == (symbol in self.stale):
                continue
            if is_stale:
                self.stale.add(symbol)
                message = f"no update for {limit:g} s: no provider is fresh"
            else:
                self.stale.discard(symbol)
                message = "updates resumed"
            self.send(
                _json(
                    {
                        "type": "status",
                        "symbol": symbol,
                        "status": "stale" if is_stale else "live",
                        "message": message,
                        "timestamp": now_iso(),
                    }
                )
            )

    def _report_providers(self) -> None:
        """Tell the client of provider status changes of its symbols (see gateway/providers.py)."""
        statuses = self.shared.statuses
        self.providers_checked = (statuses.version, len(self.watched_since))

        def serving(symbol: str) -> list[str]:
            quote = self.market.quotes.latest(symbol)
            return [] if quote is None else quote.providers

        for notice in provider_notices(self.watched_since, serving, statuses.state, self.told):
            self.send(_json({**notice_message(notice, statuses.latest), "timestamp": now_iso()}))

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
