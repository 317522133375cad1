"""The ingest service: runs providers and writes what they report to Kafka.

Ticks go to ``fiml.ticks.raw`` keyed by symbol, statuses to ``fiml.provider.status`` keyed
by provider, through one idempotent producer (acks=all). A batch is awaited until Kafka
has acknowledged every record of it, so a tick counted as written is in the log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from fiml.health import serve_health
from fiml.kafka_clients import make_producer
from fiml.metrics import count_ingested
from fiml.settings import Settings
from ingest.demand import follow_demand
from ingest.providers import Batch
from ingest.providers.registry import build_providers
from schemas import RawTick, encode

log = logging.getLogger("fiml.ingest")


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
        count_ingested(batch)


async def run_ingest(settings: Settings, stop: asyncio.Event) -> IngestCounters:
    """Run the configured providers until ``stop`` is set, then flush and return counters.

    Each provider runs as its own task, told by :func:`follow_demand` which symbols clients
    want beyond the configured ones. Providers report their own faults as statuses, so
    an exception out of one (Kafka gone, a bug) stops the service rather than going unseen.
    """
    providers = build_providers(settings)
    producer = make_producer(settings, "fiml-ingest")
    started = asyncio.Event()
    async with serve_health(settings, started.is_set):
        await producer.start()
        started.set()
        writer = TickWriter(producer, settings)
        log.info("ingest started: providers=%s symbols=%d",
                 ",".join(provider.name for provider in providers),
                 len(settings.synthetic_symbols))
        tasks = [asyncio.create_task(provider.run(writer.write, stop), name=provider.name)
                 for provider in providers]
        tasks.append(asyncio.create_task(follow_demand(settings, providers, stop)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await producer.stop()
            log.info("ingest stopped: %d ticks, %d statuses written", writer.counters.ticks,
                     writer.counters.statuses)
    return writer.counters
