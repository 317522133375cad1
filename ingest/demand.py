"""Demand-driven universe: ingest follows what the gateways' clients subscribe to.

:class:`DemandBook` folds the compacted demand topic (key ``SYMBOL|GATEWAY``) into a
subscriber count per symbol, summed over gateways, ignoring records older than three times
their own refresh period (a gateway that died without writing zeros). :class:`Universe`
keeps a symbol for ``demand_linger_seconds`` after its demand ends, so a client that
reconnects finds it still flowing. :func:`follow_demand` reads the topic and tells every
provider the extra symbols it should serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from aiokafka.errors import KafkaError

from fiml.kafka_clients import make_consumer, topic_partitions
from fiml.runtime import now_micros
from fiml.settings import Settings
from ingest.providers import Provider
from schemas import Demand, decode

log = logging.getLogger("fiml.ingest.demand")

MICROS = 1_000_000
STALE_REFRESHES = 3
RETRY_S = 2.0


class DemandBook:
    """The latest demand record per (symbol, gateway)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Demand] = {}

    def apply(self, record: Demand) -> None:
        """Take a record unless an newer one of the same key is already in."""
        key = (record.symbol, record.gateway)
        held = self.records.get(key)
        if held is None or held.ts <= record.ts:
            self.records[key] = record

    def subscribers(self, now_us: int) -> dict[str, int]:
        """Subscribers per symbol over every gateway with fresh records; zeros left out."""
        totals: dict[str, int] = {}
        for record in self.records.values():
            fresh = now_us - record.ts <= STALE_REFRESHES * record.refresh_seconds * MICROS
            if fresh and record.subscribers > 0:
                totals[record.symbol] = totals.get(record.symbol, 0) + record.subscribers
        return totals


class Universe:
    """Symbols beyond the configured ones that ingest serves because clients want them."""

    def __init__(self, configured: Iterable[str], linger_s: float) -> None:
        self.configured = frozenset(configured)
        self.linger_us = int(linger_s * MICROS)
        self.last_wanted: dict[str, int] = {}

    def update(self, wanted: Iterable[str], now_us: int) -> frozenset[str]:
        """The extra symbols to serve at ``now_us``, given the symbols with demand now."""
        for symbol in wanted:
            if symbol not in self.configured:
                self.last_wanted[symbol] = now_us
        for symbol, seen in list(self.last_wanted.items()):
            if now_us - seen > self.linger_us:
                del self.last_wanted[symbol]
        return frozenset(self.last_wanted)


async def follow_demand(settings: Settings, providers: Sequence[Provider],
                        stop: asyncio.Event, period: float = 0.5) -> None:
    """Read the demand topic until ``stop`` and keep the providers' extra symbols current."""
    book = DemandBook()
    universe = Universe(settings.synthetic_symbols, settings.demand_linger_seconds)
    extra: frozenset[str] = frozenset()
    topic = settings.topic("demand")
    while not stop.is_set():
        partitions = await topic_partitions(settings, topic)
        if partitions:
            break
        log.warning("demand topic %s not found; retrying", topic)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETRY_S)
    else:
        return
    consumer = make_consumer(settings, "fiml-ingest-demand")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=int(period * 1000))
            except KafkaError as error:
                log.warning("demand not read (%s); retrying", error)
                await asyncio.sleep(RETRY_S)
                continue
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        book.apply(decode(record.value, Demand))
            now_us = now_micros()
            wanted = universe.update(book.subscribers(now_us), now_us)
            if wanted != extra:
                log.info("demand: serving %d extra symbols (%s)", len(wanted),
                         ",".join(sorted(wanted)))
                extra = wanted
                for provider in providers:
                    provider.set_demand(extra)
    finally:
        await consumer.stop()
