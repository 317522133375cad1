"""What ingest writes to Kafka: a bounded buffer delivered in order, whatever the broker does.

Ticks go to ``fiml.ticks.raw`` and book events to ``fiml.books.raw`` keyed by symbol,
statuses to ``fiml.provider.status`` keyed by provider, news items to ``fiml.news.raw`` once
per symbol they name, keyed by that symbol, through one idempotent producer (acks=all).
Providers never wait for Kafka: what they report goes into a bounded buffer
(``FIML_INGEST_BUFFER_RECORDS``) that one delivery task empties, in order, removing a record
only once Kafka acknowledged it. While the broker is away (not there at start, gone mid-run)
the task retries with a backoff, ``/readyz`` says the broker is unavailable and the
providers' own statuses stay theirs; the buffer keeps what they report meanwhile. Nothing is
lost silently: a record that does not fit in the buffer, that the broker refuses for itself
(too large) or that is still waiting when the service stops and the broker does not come
back within ``STOP_GRACE_S`` is dropped, counted in ``fiml_ingest_dropped_total`` per
provider and reason, and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from ingest.providers import Batch
from ingest.records import IngestCounters, NewsCopy, Record, as_records
from runtime.backoff import Backoff
from runtime.kafka import make_producer
from runtime.metrics import BROKER_UP, INGEST_BUFFERED
from runtime.settings import Settings
from schemas import ProviderStatus, RawTick, encode
from schemas.books import BookEvent
from schemas.topics import RECORD_TOPICS, TopicRole

log = logging.getLogger("fiml.ingest")


MAX_ROUND = 5000
KAFKA_RETRY = Backoff(base=0.5, cap=5.0)
STOP_GRACE_S = 10.0
WAIT_REPORT_S = 5.0


class Unencodable(Exception):
    """A record that does not fit its Avro schema (a provider's bug)."""


REFUSED = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidTimestampError,
    CorruptRecordException,
    Unencodable,
)


class TickWriter:
    """Buffers what the providers report and delivers it to Kafka, whatever the broker does."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics: dict[type, str] = {
            kind: settings.topic(RECORD_TOPICS[kind]) for kind in (RawTick, BookEvent)
        }
        self.topics[NewsCopy] = settings.topic(TopicRole.NEWS_RAW)
        self.status_topic = settings.topic(TopicRole.STATUS)
        self.limit = settings.ingest_buffer_records
        self.buffer: deque[Record] = deque()
        self.counters = IngestCounters()
        self.broker_up = False
        self.problem: str | None = "not connected to Kafka yet"
        self.producer: AIOKafkaProducer | None = None
        self.rng = random.Random()
        self._arrived = asyncio.Event()
        self._stop = asyncio.Event()

    async def write(self, reported: Batch) -> None:
        """Take a batch into the buffer (the providers' emit); what does not fit is dropped.
        A news item becomes one record per symbol it names."""
        batch = as_records(reported)
        self.counters.reported += len(batch)
        room = max(0, self.limit - len(self.buffer))
        self.buffer.extend(batch[:room] if room < len(batch) else batch)
        if room < len(batch):
            self.counters.drop(batch[room:], "buffer_full")
        INGEST_BUFFERED.set(len(self.buffer))
        self._arrived.set()

    def ready(self) -> bool:
        """Whether Kafka acknowledged the last records in time (an idle producer may have
        no open connection, so the connection itself says less)."""
        return self.broker_up

    def why_not_ready(self) -> str:
        """What /readyz says while not ready: the broker is the problem, not a provider."""
        return (
            f"broker unavailable ({self.problem or 'connection lost'}); "
            f"{len(self.buffer)} records buffered"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver the buffer until ``stop`` is set, then what is left (within
        ``STOP_GRACE_S`` if the broker is away); drop what could not be delivered."""
        self._stop = stop
        attempt = 0
        try:
            while not stop.is_set():
                if not self.buffer:
                    self._arrived.clear()
                    await _first(self._arrived.wait(), stop.wait())
                    continue
                if await self._round():
                    attempt = 0
                else:
                    delay = KAFKA_RETRY.delay(attempt, self.rng)
                    attempt += 1
                    log.warning(
                        "Kafka unavailable (%s); %d records buffered, retrying in %.1f s",
                        self.problem,
                        len(self.buffer),
                        delay,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE_S):
                    while self.buffer and await self._round():
                        pass
        finally:
            self.counters.drop(list(self.buffer), "stopped")
            self.buffer.clear()
            INGEST_BUFFERED.set(0)
            await self._close()

    async def _round(self) -> bool:
        """Deliver the head of the buffer; False if Kafka failed us. A record leaves the
        buffer once acknowledged (or dropped), so nothing delivered is sent again and
        nothing undelivered is lost, even if this is cancelled."""
        if self.producer is None and not await self._connect():
            return False
        records = [self.buffer[n] for n in range(min(len(self.buffer), MAX_ROUND))]
        futures, failure = [], None
        try:
            for record in records:
                futures.append(await self._send(record))
        except KafkaError as error:  # this record and the later ones were not taken
            failure = error
        outcomes = await self._outcomes(futures)
        for _ in records:
            self.buffer.popleft()
        refused = [r for r, o in zip(records, outcomes, strict=False) if isinstance(o, REFUSED)]
        self.counters.drop(refused, "refused")
        retry = [
            r
            for r, o in zip(records, outcomes, strict=False)
            if isinstance(o, BaseException) and not isinstance(o, REFUSED)
        ]
        self.buffer.extendleft(reversed(retry + records[len(futures) :]))
        delivered = [
            r for r, o in zip(records, outcomes, strict=False) if not isinstance(o, BaseException)
        ]
        self.counters.written(delivered)
        INGEST_BUFFERED.set(len(self.buffer))
        failure = failure or next(
            (o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, REFUSED)),
            None,
        )
        if failure is None:
            self._set_up(True)
            return True
        self._set_up(False, f"{type(failure).__name__}: {failure}")
        await self._close()
        return False

    async def _send(self, record: Record) -> asyncio.Future[Any]:
        """Hand one record to the producer; its delivery future (an unencodable record, a
        provider's bug, comes back as refused rather than stopping the delivery)."""
        if isinstance(record, ProviderStatus):
            topic, key = self.status_topic, record.provider
        else:
            topic, key = self.topics[type(record)], record.symbol
        try:
            value = encode(record.item if isinstance(record, NewsCopy) else record)
        except Exception as error:  # fastavro's errors on bad values have no common base
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(Unencodable(f"{type(error).__name__}: {error}"))
            return refused
        assert self.producer is not None, "a round connects first"
        delivery: asyncio.Future[Any] = await self.producer.send(topic, value, key=key.encode())
        return delivery

    async def _outcomes(self, futures: list[asyncio.Future[Any]]) -> list[object]:
        """Each future's result or exception once all are done (logging while they wait),
        or, for those still waiting ``STOP_GRACE_S`` after a stop, a TimeoutError."""
        began = reported = time.monotonic()
        stopping: float | None = None
        pending = set(futures)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=1.0)
            now = time.monotonic()
            if pending and self._stop.is_set():
                stopping = stopping or now
                if now - stopping >= STOP_GRACE_S:
                    break
            if pending and now - reported >= WAIT_REPORT_S:
                reported = now
                self._set_up(False, "no acknowledgement from the broker")
                log.warning(
                    "Kafka unavailable: %d records waiting %.0f s for their "
                    "acknowledgement; %d records buffered",
                    len(pending),
                    now - began,
                    len(self.buffer),
                )
        return [
            (future.exception() or future.result())
            if future.done()
            else TimeoutError("not acknowledged before the stop")
            for future in futures
        ]

    async def _connect(self) -> bool:
        producer = make_producer(self.settings, "fiml-ingest")
        try:
            await producer.start()
        except (KafkaError, OSError) as error:
            self._set_up(False, f"{type(error).__name__}: {error}")
            with contextlib.suppress(Exception):
                await producer.stop()
            return False
        self.producer = producer
        return True

    async def _close(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), STOP_GRACE_S)

    def _set_up(self, up: bool, problem: str | None = None) -> None:
        if up and not self.broker_up:
            log.info("Kafka available: delivering (%d records buffered)", len(self.buffer))
        self.broker_up = up
        self.problem = problem
        BROKER_UP.set(1.0 if up else 0.0)


async def _first(*waits: Awaitable[object]) -> None:
    """Wait until the first of ``waits`` (coroutines) is done; cancel the others."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
