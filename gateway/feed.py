"""Reads every partition of the quotes, candles, trades and provider status topics into the
Market stores and the provider statuses.

Each gateway replica assigns all partitions itself (no consumer group), so every replica
sees every symbol. On start it reads back up to ``gateway_warm_records`` records per
partition, so clients get a snapshot right away. Its consumer lag per partition goes to
``fiml_consumer_lag`` at most once per ``LAG_PERIOD`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from fiml.kafka_clients import make_consumer, topic_partitions
from fiml.metrics import ConsumerLag
from fiml.settings import Settings
from gateway.providers import ProviderStatuses
from gateway.stores import Market
from schemas import Candle, DecodeError, ProviderStatus, Quote, Trade, decode

log = logging.getLogger("fiml.gateway.feed")

RESTART_DELAY = 1.0
LAG_PERIOD = 1.0


class MarketFeed:
    """A background task that keeps ``market`` up to date from Kafka."""

    def __init__(self, settings: Settings, market: Market, statuses: ProviderStatuses) -> None:
        self.settings = settings
        self.routes: dict[str, tuple[type, Callable]] = {
            settings.topic("quotes"): (Quote, market.quotes.update),
            settings.topic("candles"): (Candle, market.candles.update),
            settings.topic("trades"): (Trade, market.trades.update),
            settings.topic("provider.status"): (ProviderStatus, statuses.update),
        }
        self.lag = ConsumerLag()
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
                log.exception("market feed failed; restarting in %.0f s", RESTART_DELAY)
                self.ready.clear()
                await asyncio.sleep(RESTART_DELAY)

    async def _consume(self) -> None:
        partitions = [tp for topic in self.routes for tp in await self._partitions(topic)]
        consumer = make_consumer(self.settings, "fiml-gateway")
        await consumer.start()
        try:
            await self._warm_up(consumer, partitions)
            log.info("gateway reading %d partitions", len(partitions))
            self.ready.set()
            lag_due = 0.0
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for partition, records in batches.items():
                    record_type, update = self.routes[partition.topic]
                    for record in records:
                        self._take(record_type, update, record.value, partition, record.offset)
                if time.monotonic() >= lag_due:
                    lag_due = time.monotonic() + LAG_PERIOD
                    await self._export_lag(consumer, partitions)
        finally:
            self.lag.export({})
            await consumer.stop()

    async def _export_lag(self, consumer: AIOKafkaConsumer,
                          partitions: list[TopicPartition]) -> None:
        lags = {}
        for tp in partitions:
            end = consumer.highwater(tp)
            if end is not None:
                lags[(tp.topic, tp.partition)] = end - await consumer.position(tp)
        self.lag.export(lags)

    async def _warm_up(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for partition in partitions:
            warm = ends[partition] - self.settings.gateway_warm_records
            consumer.seek(partition, max(starts[partition], warm))

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        while True:
            partitions = await topic_partitions(self.settings, topic)
            if partitions:
                return partitions
            log.warning("topic %s not found; waiting for it", topic)
            await asyncio.sleep(RESTART_DELAY)

    def _take(self, record_type: type, update: Callable, value: bytes,
              partition: TopicPartition, offset: int) -> None:
        try:
            record = decode(value, record_type)
        except DecodeError as error:
            self.undecodable += 1
            log.warning("skipped undecodable record at %s:%d: %s", partition, offset, error)
            return
        self.consumed += 1
        update(record)
