"""Publishes what this gateway's clients subscribe to, so ingest can follow demand.

Every ``FLUSH_PERIOD`` the publisher counts, per symbol, the subscriptions that include it
and writes the counts that changed to the compacted demand topic (key ``SYMBOL|GATEWAY``);
every ``demand_refresh_seconds`` it writes all of them again, and on shutdown it writes
zeros. A symbol nobody subscribes to any more is written once with 0 subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gateway.registry import ConnectionRegistry
from runtime.clock import now_micros
from runtime.kafka import make_producer
from runtime.settings import Settings
from schemas import Demand, encode
from schemas.topics import TopicRole

log = logging.getLogger("fiml.gateway.demand")

FLUSH_PERIOD = 0.5
RETRY_DELAY = 2.0


def demand_changes(previous: dict[str, int], current: Counter[str]) -> dict[str, int]:
    """Counts that differ from ``previous``, with 0 for symbols no longer subscribed."""
    changes = {symbol: 0 for symbol in previous if symbol not in current}
    changes.update(
        {symbol: count for symbol, count in current.items() if previous.get(symbol) != count}
    )
    return changes


class DemandPublisher:
    """Keeps the demand topic in step with the registry's subscriptions."""

    def __init__(self, settings: Settings, registry: ConnectionRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.topic = settings.topic(TopicRole.DEMAND)
        self.published: dict[str, int] = {}
        self.producer: AIOKafkaProducer | None = None

    async def run(self) -> None:
        """Flush changes until cancelled, then publish zeros for everything."""
        producer = self.producer = make_producer(self.settings, "fiml-gateway-demand")
        await self._start_producer(producer)
        loop = asyncio.get_running_loop()
        next_refresh = loop.time() + self.settings.demand_refresh_seconds
        try:
            while True:
                await asyncio.sleep(FLUSH_PERIOD)
                current = self.registry.demand()
                if loop.time() >= next_refresh:
                    next_refresh += self.settings.demand_refresh_seconds
                    await self._publish(producer, {**dict.fromkeys(self.published, 0), **current})
                else:
                    await self._publish(producer, demand_changes(self.published, current))
        finally:
            with contextlib.suppress(Exception):
                await self._publish(producer, dict.fromkeys(self.published, 0))
            await producer.stop()

    async def _start_producer(self, producer: AIOKafkaProducer) -> None:
        while True:
            try:
                await producer.start()
                return
            except KafkaError as error:
                log.warning("demand producer cannot reach Kafka (%s); retrying", error)
                await asyncio.sleep(RETRY_DELAY)

    async def _publish(self, producer: AIOKafkaProducer, counts: dict[str, int]) -> None:
        if not counts:
            return
        ts = now_micros()
        deliveries = []
        for symbol, count in counts.items():
            record = Demand(
                symbol, self.settings.gateway_id, count, ts, self.settings.demand_refresh_seconds
            )
            key = f"{symbol}|{self.settings.gateway_id}".encode()
            deliveries.append(await producer.send(self.topic, encode(record), key=key))
        try:
            await asyncio.gather(*deliveries)
        except KafkaError as error:
            log.warning("demand not published (%s); retrying with the next flush", error)
            return
        for symbol, count in counts.items():
            if count:
                self.published[symbol] = count
            else:
                self.published.pop(symbol, None)
        log.debug("published demand for %d symbols", len(counts))
