"""Replay subscriptions: a subscribe message with ``start`` streams the log by event time.

A reader task takes :class:`runtime.replay.Replay` in chunks of ``READ_CHUNK`` records, encodes
each chunk's JSON items at once (so the decoded records die young and the next message is
mostly built while the previous one is written) and puts it in a small bounded queue; the
pacer takes from it on the subscription's ``interval_ms`` cadence, releasing the items whose
time (:attr:`runtime.replay.Replayed.time`) the replay clock (``start + elapsed * speed``) has
reached, conflated per interval like live data (price and quote per symbol, ohlcv per
bucket, trades and news never: news is read under each story's symbol key, by publish
time). At speed 0 the clock is off: every record is sent, unconflated, as
fast as the client takes the messages. While a message waits for the client (``in_flight``)
nothing is taken, so the queue fills and the reader stops reading: memory stays bounded
whatever the client's pace.

An orderbook replay reads ``runtime/book_replay.py`` and sends every book through the
symbol's publisher, unconflated: a snapshot, then checksummed deltas, as live; without
``end`` the same publishers carry on with the live books, so ``seq`` and the checksum go on.

With ``end`` a ``replay_complete`` message ends the subscription. Without it, the records
past the offsets captured at the start come live from the same consumer, so nothing is
missed or repeated at the hand-over; from then on data messages carry no ``replay`` flag.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import orjson

from gateway import frames
from gateway.history import check_range
from gateway.protocol import ErrorCode, SubscribeRequest, error_frame
from gateway.replay_sources import UNCONFLATED, conflation_key, reader_and_items, replay_request
from gateway.subscription import Subscription
from runtime.pacing import Pacer
from runtime.readers import ReaderPool
from runtime.replay import Replay, Replayed
from runtime.replay_request import ReplayError
from runtime.settings import Settings

log = logging.getLogger("fiml.gateway.replay")

MAX_ITEMS = 1000
READ_CHUNK = 100
QUEUE_CHUNKS = 2 * MAX_ITEMS // READ_CHUNK
UNPACED_POLL = 0.001
END = object()

Send = Callable[[str, Subscription | None], None]


@dataclass(slots=True)
class Encoded:
    """Records read back, all replayed or all live, as the JSON items of data messages,
    with each one's event time, symbol and (when it may be conflated) conflation key."""

    live: bool
    times: list[int]
    symbols: list[str]
    items: list[str]
    keys: list[Hashable]


class ReplayRun:
    """Serve one replay subscription until it completes or is cancelled."""

    def __init__(
        self,
        settings: Settings,
        subscription: Subscription,
        request: SubscribeRequest,
        send: Send,
        readers: ReaderPool,
    ) -> None:
        assert request.start is not None
        self.settings = settings
        self.subscription = subscription
        self.request = request
        self.send = send
        self.readers = readers
        self.replay = replay_request(subscription, request)
        self.start = self.replay.start
        self.end = self.replay.end
        self.speed = self.replay.speed
        self.pacer = Pacer(self.start, self.speed)
        self.reader, self.build = reader_and_items(subscription)
        self.queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_CHUNKS)
        self.chunk = Encoded(False, [], [], [], [])
        self.next = 0
        self.finished = False
        self.handed_over = False

    async def run(self, ack: str) -> None:
        """Open the replay, send ``ack``, then pace; a bad range gets REPLAY_ERROR instead."""
        sub = self.subscription
        try:
            replay = self.reader(
                self.settings,
                self.replay,
                readers=self.readers,
                scan_limit=self.settings.max_history_scan_records,
            )
            check_range(self.settings, self.replay)  # once the range is known to be one
            await replay.open()
        except ReplayError as error:
            self.send(
                error_frame(ErrorCode.REPLAY_ERROR, f"Failed to create subscription: {error}"), None
            )
            return
        except Exception:
            log.exception("a replay could not start")
            self.send(
                error_frame(
                    ErrorCode.PROCESSING_ERROR,
                    "Failed to create subscription: the log could not be read",
                ),
                None,
            )
            return
        reader = asyncio.create_task(self._read(replay))
        completed = False
        try:
            self.send(ack, None)
            completed = await self._pace()
        except Exception:
            log.exception("a replay failed")
            self.send(
                error_frame(
                    ErrorCode.PROCESSING_ERROR, f"the replay of subscription {sub.id} failed"
                ),
                None,
            )
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await asyncio.shield(replay.close())  # an unsubscribe now must not cut it short
        if completed:
            self._complete()

    async def _read(self, replay: Replay) -> None:
        try:
            async for chunk in replay.chunks(READ_CHUNK):
                encoded = self._encode(chunk)
                if encoded.items:
                    await self.queue.put(encoded)
        except Exception as error:
            await self.queue.put(error)
            return
        await self.queue.put(END)

    async def _pace(self) -> bool:
        """Send the replay's data; True once a replay with ``end`` sent all of it.

        The replay clock starts when the first records have been read, not at the ack, so
        a slow first read (old segments on disk, a busy broker) does not release its share
        of the range in one burst; the first pass releases what is due at ``start``.
        """
        sub = self.subscription
        loop = asyncio.get_running_loop()
        self._make_current(await self.queue.get())
        interval = sub.interval_ms / 1000
        pacer = self.pacer
        now = began = pacer.began = loop.time()
        slot = 0
        while True:
            clock = pacer.clock(now)
            if not sub.in_flight:
                items, live, finished = self._take(clock)
                if items:
                    sub.in_flight = True
                    self.send(sub.data_message(items, replay=not live), sub)
                if finished and (clock is None or self.end is None or clock >= self.end):
                    return True
            if self.speed is None and not self.handed_over:
                await asyncio.sleep(UNPACED_POLL)
                now = loop.time()
                continue
            slot += 1
            late = loop.time() - (began + slot * interval)
            if late > 0:
                slot += int(late // interval) + 1
            await asyncio.sleep(began + slot * interval - loop.time())
            now = loop.time()

    def _encode(self, chunk: list[Replayed]) -> Encoded:
        """Encode a chunk at once, so that its records die young (a replayed book that
        changes nothing the subscription shows has no item and is left out)."""
        live = chunk[0].live
        built = [(item, made) for item in chunk if (made := self.build(item.record)) is not None]
        records = [item.record for item, _ in built]
        stream_type = self.subscription.stream_type
        conflated = (self.speed is not None or live) and stream_type not in UNCONFLATED
        return Encoded(
            live,
            [item.time for item, _ in built],
            [r.symbol for r in records],
            [orjson.dumps(made).decode() for _, made in built],
            [conflation_key(stream_type, r) for r in records] if conflated else [],
        )

    def _take(self, clock: float | None) -> tuple[list[str], bool, bool]:
        """Items released by ``clock``, all replayed or all live; and whether the replay ended.

        Replayed records at speed 0, trades and news are never conflated: they go to ``items``;
        the others to ``latest``, by conflation key.
        """
        symbols = set(self.subscription.symbols)
        items: list[str] = []
        latest: dict[Hashable, str] = {}
        live: bool | None = None
        while (room := MAX_ITEMS - len(items) - len(latest)) > 0 and (
            self.next < len(self.chunk.items) or self._next_chunk()
        ):
            chunk = self.chunk
            if live is not None and chunk.live != live:
                break
            live = chunk.live
            self.handed_over = self.handed_over or live
            first, stop = self.next, min(len(chunk.items), self.next + room)
            if clock is not None and not live:
                stop = bisect.bisect_right(chunk.times, clock, first, stop)
                if stop == first:
                    break
            self.next = stop
            if not chunk.keys:
                items += [
                    item
                    for item, symbol in zip(
                        chunk.items[first:stop], chunk.symbols[first:stop], strict=True
                    )
                    if symbol in symbols
                ]
                continue
            for index in range(first, stop):
                if chunk.symbols[index] in symbols:
                    latest.pop(chunk.keys[index], None)
                    latest[chunk.keys[index]] = chunk.items[index]
        return (
            items or list(latest.values()),
            bool(live),
            (self.finished and self.next == len(self.chunk.items)),
        )

    def _next_chunk(self) -> bool:
        """Make the next chunk of the queue current; False if there is none yet or any more."""
        try:
            head = self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False
        return self._make_current(head)

    def _make_current(self, head: object) -> bool:
        """Make ``head``, taken from the queue, the current chunk; False if it ends the
        replay."""
        if head is END:
            self.finished = True
            return False
        if isinstance(head, Exception):
            raise head
        assert isinstance(head, Encoded)
        self.chunk, self.next = head, 0
        return True

    def _complete(self) -> None:
        self.send(frames.replay_complete(self.subscription, self.request), None)
