"""Replay subscriptions: a subscribe message with ``start`` streams the log by event time.

A reader task pulls :class:`fiml.replay.Replay` into a small bounded queue; the pacer takes
from it on the subscription's ``interval_ms`` cadence, releasing the records whose event time
the replay clock (``start + elapsed * speed``) has reached, conflated per interval like live
data (price and quote per symbol, ohlcv per bucket, trades never). At speed 0 the clock is
off: every record is sent, unconflated, as fast as the client takes the messages. While a
message waits for the client (``in_flight``) nothing is taken, so the queue fills and the
reader stops reading: memory stays bounded whatever the client's pace.

With ``end`` a ``replay_complete`` message ends the subscription. Without it, the records
past the offsets captured at the start come live from the same consumer, so nothing is
missed or repeated at the hand-over; from then on data messages carry no ``replay`` flag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any

import orjson

from fiml.replay import Replay, Replayed, ReplayError
from fiml.settings import Settings
from gateway.items import candle_item, trade_item
from gateway.protocol import ErrorCode, StreamType, SubscribeRequest, error_frame, utc_timestamp
from gateway.stores import QUOTE_BUILDERS
from gateway.subscription import Subscription
from schemas.records import datetime_to_micros

log = logging.getLogger("fiml.gateway.replay")

MAX_ITEMS = 1000
QUEUE_SIZE = 1000
UNPACED_POLL = 0.001
END = object()

SOURCES = {StreamType.PRICE: "quotes", StreamType.QUOTE: "quotes",
           StreamType.MULTI_ASSET: "quotes", StreamType.OHLCV: "candles",
           StreamType.TRADES: "trades"}

Send = Callable[[str, Subscription | None], None]


def item_builder(stream_type: StreamType) -> Callable[[Any], dict[str, object]]:
    """How one record of ``stream_type`` becomes an item of a data message."""
    if stream_type == StreamType.OHLCV:
        return candle_item
    if stream_type == StreamType.TRADES:
        return trade_item
    return QUOTE_BUILDERS[stream_type]


def conflation_key(stream_type: StreamType, item: Replayed, unconflated: bool) -> Hashable:
    """Items with the same key in one message keep only the latest."""
    if unconflated or stream_type == StreamType.TRADES:
        return (item.partition, item.offset)
    if stream_type == StreamType.OHLCV:
        return (item.record.symbol, item.record.open_time)
    return item.record.symbol


def replay_ack_fields(request: SubscribeRequest) -> dict[str, object]:
    """What a subscription_ack of a replay adds: its start, end and speed."""
    assert request.start is not None
    return {"start": utc_timestamp(request.start),
            "end": None if request.end is None else utc_timestamp(request.end),
            "speed": request.speed}


class ReplayRun:
    """Serve one replay subscription until it completes or is cancelled."""

    def __init__(self, settings: Settings, subscription: Subscription,
                 request: SubscribeRequest, send: Send) -> None:
        assert request.start is not None
        self.settings = settings
        self.subscription = subscription
        self.request = request
        self.send = send
        self.start = datetime_to_micros(request.start)
        self.end = None if request.end is None else datetime_to_micros(request.end)
        self.speed = request.speed
        self.build = item_builder(subscription.stream_type)
        self.queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_SIZE)
        self.head: object | None = None
        self.handed_over = False

    async def run(self, ack: str) -> None:
        """Open the replay, send ``ack``, then pace; a bad range gets REPLAY_ERROR instead."""
        sub = self.subscription
        timeframe = sub.timeframe if sub.stream_type == StreamType.OHLCV else None
        try:
            replay = Replay(self.settings, SOURCES[sub.stream_type], sub.symbols, self.start,
                            self.end, timeframe=timeframe)
            await replay.open()
        except ReplayError as error:
            self.send(error_frame(ErrorCode.REPLAY_ERROR,
                                  f"Failed to create subscription: {error}"), None)
            return
        except Exception:
            log.exception("a replay could not start")
            self.send(error_frame(ErrorCode.PROCESSING_ERROR,
                                  "Failed to create subscription: the log could not be read"),
                      None)
            return
        reader = asyncio.create_task(self._read(replay))
        completed = False
        try:
            self.send(ack, None)
            completed = await self._pace()
        except Exception:
            log.exception("a replay failed")
            self.send(error_frame(ErrorCode.PROCESSING_ERROR,
                                  f"the replay of subscription {sub.id} failed"), None)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await replay.close()
        if completed:
            self._complete()

    async def _read(self, replay: Replay) -> None:
        queue = self.queue
        try:
            async for item in replay.records():
                if queue.full():
                    await queue.put(item)
                else:
                    queue.put_nowait(item)
        except Exception as error:
            await self.queue.put(error)
            return
        await self.queue.put(END)

    async def _pace(self) -> bool:
        """Send the replay's data; True once a replay with ``end`` sent all of it."""
        sub = self.subscription
        loop = asyncio.get_running_loop()
        interval = sub.interval_ms / 1000
        began = loop.time()
        slot = 0
        while True:
            clock = None if self.speed == 0 else self.start + (loop.time() - began) * (
                self.speed * 1_000_000)
            if not sub.in_flight:
                items, live, finished = self._take(clock)
                if items:
                    sub.in_flight = True
                    self.send(sub.data_message(items, replay=not live), sub)
                if finished and (clock is None or self.end is None or clock >= self.end):
                    return True
            if self.speed == 0 and not self.handed_over:
                await asyncio.sleep(UNPACED_POLL)
                continue
            slot += 1
            late = loop.time() - (began + slot * interval)
            if late > 0:
                slot += int(late // interval) + 1
            await asyncio.sleep(began + slot * interval - loop.time())

    def _take(self, clock: float | None) -> tuple[list[str], bool, bool]:
        """Items released by ``clock``, all replayed or all live; and whether the replay ended."""
        stream_type = self.subscription.stream_type
        symbols = self.subscription.symbols
        batch: dict[Hashable, str] = {}
        live: bool | None = None
        while len(batch) < MAX_ITEMS:
            if self.head is None:
                try:
                    self.head = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            head = self.head
            if head is END:
                return list(batch.values()), bool(live), True
            if isinstance(head, Exception):
                raise head
            assert isinstance(head, Replayed)
            if live is not None and head.live != live:
                break
            if not head.live and clock is not None and head.time > clock:
                break
            live = head.live
            self.handed_over = self.handed_over or live
            self.head = None
            if head.record.symbol not in symbols:
                continue
            key = conflation_key(stream_type, head, unconflated=clock is None and not live)
            batch.pop(key, None)
            batch[key] = orjson.dumps(self.build(head.record)).decode()
        return list(batch.values()), bool(live), False

    def _complete(self) -> None:
        sub = self.subscription
        request = self.request
        assert request.start is not None and request.end is not None
        self.send(orjson.dumps({
            "type": "replay_complete", "stream_type": sub.stream_type.value,
            "subscription_id": sub.id, "start": utc_timestamp(request.start),
            "end": utc_timestamp(request.end), "timestamp": utc_timestamp(),
        }).decode(), None)
