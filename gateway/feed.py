"""Reads every partition of the quotes, candles, trades, news, consolidated books and provider
status topics into the market stores and the provider statuses.

Each gateway replica assigns all partitions itself (no consumer group), so every replica
sees every symbol. On start it reads back up to ``gateway_warm_records`` records per
partition, so clients get a snapshot right away. Its consumer lag per partition goes to
``fiml_consumer_lag`` once a second, from a task beside the reading loop that also tells
``/healthz`` whether the loop keeps up (:class:`runtime.health.Progress`). A record that is not
one of ours, or that clients could not be shown (a time no date can show, an unknown
provider state), is counted, logged and skipped (``runtime/intake.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.books.protocol import check_consolidated
from gateway.providers import NOTICES, ProviderStatuses
from gateway.stores import MarketStores
from runtime.health import Progress
from runtime.intake import INVALID, decode_or_skip, skip
from runtime.kafka import connected, make_consumer, topic_partitions
from runtime.metrics import ConsumerLag
from runtime.private import private_attribute
from runtime.service import restarting
from runtime.settings import Settings
from schemas import Candle, ProviderStatus, Quote, Trade
from schemas.books import ConsolidatedBook
from schemas.news import NewsItem, story_symbol
from schemas.times import check_micros
from schemas.topics import TopicRole

log = logging.getLogger("fiml.gateway.feed")

RESTART_DELAY = 1.0


class MarketFeed:
    """A background task that keeps ``market`` up to date from Kafka."""

    def __init__(
        self, settings: Settings, market: MarketStores, statuses: ProviderStatuses
    ) -> None:
        self.settings = settings
        self.market = market
        self.routes: dict[str, tuple[type, Callable[[Any], None], Callable[..., None]]] = {
            settings.topic(TopicRole.QUOTES): (Quote, check_event_time, market.quotes.update),
            settings.topic(TopicRole.CANDLES): (Candle, check_open_time, market.candles.update),
            settings.topic(TopicRole.TRADES): (Trade, check_event_time, market.trades.update),
            settings.topic(TopicRole.STATUS): (ProviderStatus, check_status, statuses.update),
            settings.topic(TopicRole.CONSOLIDATED_BOOKS): (
                ConsolidatedBook,
                check_consolidated,
                market.books.update,
            ),
        }
        self.news_topic = settings.topic(TopicRole.NEWS)
        self.routes[self.news_topic] = (NewsItem, check_news_time, market.news.update)
        self.lag = ConsumerLag()
        self.progress = Progress(settings.consumer_stall_seconds)
        self.ready = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.consumed = 0

    def connected(self) -> bool:
        """Whether the feed's consumer has a live connection to a broker."""
        if self.consumer is None:
            return False
        return connected(private_attribute(self.consumer, "_client", "aiokafka"))

    async def run(self) -> None:
        """Assign, warm up, then consume until cancelled; restart after unexpected errors."""
        await restarting(self._consume, "market feed", log, RESTART_DELAY, self.ready.clear)

    async def _consume(self) -> None:
        partitions = [tp for topic in self.routes for tp in await self._partitions(topic)]
        consumer = self.consumer = make_consumer(self.settings, "fiml-gateway")
        await consumer.start()
        try:
            await self._warm_up(consumer, partitions)
            log.info("gateway reading %d partitions", len(partitions))
            self.ready.set()
            async with self.progress.watching(consumer, partitions, self.lag):
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                    now = time.monotonic()
                    for partition, records in batches.items():
                        record_type, check, update = self.routes[partition.topic]
                        keyed = partition.topic == self.news_topic
                        for record in records:
                            value = decode_or_skip(record, record_type, check)
                            if value is None:
                                continue
                            if keyed:  # a story is shown under the symbol of its key
                                symbol = story_symbol(record.key, value)
                                if symbol is None:
                                    skip_unkeyed(record, value)
                                    continue
                                update(symbol, value)
                                self.market.touch(symbol, now)
                            else:
                                update(value)
                                if record_type is not ProviderStatus:
                                    self.market.touch(value.symbol, now)
                            self.consumed += 1
        finally:
            self.lag.export({})
            await consumer.stop()

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


def skip_unkeyed(record: ConsumerRecord, item: NewsItem) -> None:
    """Skip a story whose key is not one of its symbols (``invalid``)."""
    detail = f"key {record.key!r} is not among the story's symbols {item.symbols}"
    skip(record.topic, record.partition, record.offset, INVALID, detail)


def check_event_time(record: Quote | Trade) -> None:
    """Raise ValueError unless the record's event time is one a date can show (its item
    needs one)."""
    check_micros(record.ts_event)


def check_open_time(candle: Candle) -> None:
    """Raise ValueError unless the candle's open time is one a date can show."""
    check_micros(candle.open_time)


def check_news_time(item: NewsItem) -> None:
    """Raise ValueError unless the story's publish time is one a date can show."""
    check_micros(item.published_us)


def check_status(status: ProviderStatus) -> None:
    """Raise ValueError unless clients can be told of ``status`` (a known state, a time a
    date can show)."""
    if status.state not in NOTICES:
        raise ValueError(f"unknown state {status.state!r}")
    check_micros(status.ts_event)
