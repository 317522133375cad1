"""The ingest service: runs providers and writes what they report to Kafka.

Ticks go to ``fiml.ticks.raw`` keyed by symbol, statuses to ``fiml.provider.status`` keyed
by provider, through one idempotent producer (acks=all). A batch is awaited until Kafka
has acknowledged every record of it, so a tick counted as written is in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from fiml.health import serve_health
from fiml.kafka_clients import make_producer
from fiml.runtime import now_micros
from fiml.settings import Settings
from ingest.synthetic import DEFAULT_VENUES, SyntheticMarket, with_faults
from schemas import ProviderStatus, RawTick, encode

log = logging.getLogger("fiml.ingest")

Batch = Sequence[RawTick | ProviderStatus]


@dataclass
class IngestCounters:
    """What the service has written so far."""

    ticks: int = 0
    statuses: int = 0


class TickWriter:
    """Encodes records and produces them to their topics."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings) -> None:
        self.producer = producer
        self.raw_topic = settings.topic("ticks.raw")
        self.status_topic = settings.topic("provider.status")
        self.counters = IngestCounters()

    async def write(self, batch: Batch) -> None:
        """Produce a batch and wait until Kafka acknowledged all of it."""
        deliveries = []
        for record in batch:
            if isinstance(record, RawTick):
                topic, key = self.raw_topic, record.symbol
            else:
                topic, key = self.status_topic, record.provider
            deliveries.append(await self.producer.send(topic, encode(record), key=key.encode()))
        await asyncio.gather(*deliveries)
        ticks = sum(isinstance(record, RawTick) for record in batch)
        self.counters.ticks += ticks
        self.counters.statuses += len(batch) - ticks


async def synthetic_feed(settings: Settings, stop: asyncio.Event,
                         period: float = 0.1) -> AsyncIterator[Batch]:
    """Batches of the synthetic market on a fixed cadence of ``period`` seconds."""
    venues = with_faults(DEFAULT_VENUES, settings.synthetic_faults)
    market = SyntheticMarket(settings.synthetic_symbols, seed=settings.synthetic_seed,
                             tick_hz=settings.synthetic_tick_hz, venues=venues)
    loop = asyncio.get_running_loop()
    next_step = loop.time()
    while not stop.is_set():
        ticks, statuses = market.advance(now_micros())
        yield [*statuses, *ticks]
        next_step += period
        delay = next_step - loop.time()
        if delay < 0:
            next_step = loop.time()
            delay = 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def run_ingest(settings: Settings, stop: asyncio.Event) -> IngestCounters:
    """Run the configured providers until ``stop`` is set, then flush and return counters."""
    unknown = set(settings.providers) - {"synthetic"}
    if unknown:
        raise ValueError(f"unknown providers: {', '.join(sorted(unknown))} (known: synthetic)")
    producer = make_producer(settings, "fiml-ingest")
    started = asyncio.Event()
    async with serve_health(settings, started.is_set):
        await producer.start()
        started.set()
        writer = TickWriter(producer, settings)
        log.info("ingest started: providers=%s symbols=%d", ",".join(settings.providers),
                 len(settings.synthetic_symbols))
        try:
            async for batch in synthetic_feed(settings, stop):
                await writer.write(batch)
        finally:
            await producer.stop()
            log.info("ingest stopped: %d ticks, %d statuses written", writer.counters.ticks,
                     writer.counters.statuses)
    return writer.counters
