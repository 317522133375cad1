"""Reads every partition of the quotes topic into LatestQuotes.

Each gateway replica assigns all partitions itself (no consumer group), so every replica
sees every symbol. On start it reads back up to ``gateway_warm_records`` records per
partition, so clients get a snapshot right away.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition

from fiml.kafka_clients import make_consumer, topic_partitions
from fiml.settings import Settings
from gateway.latest import LatestQuotes
from schemas import DecodeError, Quote, decode

log = logging.getLogger("fiml.gateway.feed")

RESTART_DELAY = 1.0


class QuoteFeed:
    """A background task that keeps ``latest`` up to date from Kafka."""

    def __init__(self, settings: Settings, latest: LatestQuotes) -> None:
        self.settings = settings
        self.latest = latest
        self.topic = settings.topic("quotes")
        self.ready = asyncio.Event()
        self.consumed = 0
        self.undecodable = 0

    async def run(self) -> None:
        """Assign, warm up, then consume until cancelled; restart after unexpected errors."""
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("quote feed failed; restarting in %.0f s", RESTART_DELAY)
                self.ready.clear()
                await asyncio.sleep(RESTART_DELAY)

    async def _consume(self) -> None:
        partitions = await self._partitions()
        consumer = make_consumer(self.settings, "fiml-gateway")
        await consumer.start()
        try:
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            for partition in partitions:
                warm = ends[partition] - self.settings.gateway_warm_records
                consumer.seek(partition, max(starts[partition], warm))
            log.info("gateway reading %d partitions of %s", len(partitions), self.topic)
            self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self._take(record.value, record.offset)
        finally:
            await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        while True:
            partitions = await topic_partitions(self.settings, self.topic)
            if partitions:
                return partitions
            log.warning("topic %s not found; waiting for it", self.topic)
            await asyncio.sleep(RESTART_DELAY)

    def _take(self, value: bytes, offset: int) -> None:
        try:
            quote = decode(value, Quote)
        except DecodeError as error:
            self.undecodable += 1
            log.warning("skipped undecodable quote at offset %d: %s", offset, error)
            return
        self.consumed += 1
        self.latest.update(quote)
