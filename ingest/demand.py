"""Demand-driven universe: ingest follows what the gateways' clients subscribe to.

:class:`DemandBook` folds the compacted demand topic (key ``SYMBOL|GATEWAY``) into a
subscriber count per symbol, summed over gateways, ignoring records older than three times
their own refresh period (a gateway that died without writing zeros). :class:`Universe`
keeps a symbol for ``demand_linger_seconds`` after its demand ends, so a client that
reconnects finds it still flowing; the book forgets records that count for nothing once they
are ``symbol_evict_seconds`` old. :func:`follow_demand` reads the topic and tells every
provider the extra symbols it should serve, and the news pollers every symbol clients
subscribe to now (a budget spent on demand alone polls those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Sequence

from aiokafka.errors import KafkaError

from ingest.news.poller import NewsPoller
from ingest.providers import Provider
from runtime.clock import now_micros
from runtime.health import Progress
from runtime.intake import decode_or_skip
from runtime.kafka import make_consumer, partitions_once_created
from runtime.metrics import SYMBOLS_HELD
from runtime.service import until_stopped
from runtime.settings import Settings
from schemas import Demand
from schemas.symbols import canonical_symbol
from schemas.topics import TopicRole

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

    def evict(self, now_us: int, idle_us: int) -> None:
        """Drop the records that count for nothing (no subscribers, or stale) and are older
        than ``idle_us``: a symbol demanded once is not kept for ever."""
        for key, record in list(self.records.items()):
            counts = fresh(record, now_us) and record.subscribers > 0
            if not counts and now_us - record.ts > idle_us:
                del self.records[key]

    def subscribers(self, now_us: int) -> dict[str, int]:
        """Subscribers per symbol over every gateway with fresh records; zeros left out."""
        totals: dict[str, int] = {}
        for record in self.records.values():
            if fresh(record, now_us) and record.subscribers > 0:
                totals[record.symbol] = totals.get(record.symbol, 0) + record.subscribers
        return totals


def fresh(record: Demand, now_us: int) -> bool:
    """Whether ``record`` still counts: written within three of its gateway's refreshes."""
    return now_us - record.ts <= STALE_REFRESHES * record.refresh_seconds * MICROS


class Universe:
    """Symbols beyond the configured ones that ingest serves because clients want them, at
    most ``cap`` (0: no cap): a symbol demanded while the cap is full waits for a place."""

    def __init__(self, configured: Iterable[str], linger_s: float, cap: int = 0) -> None:
        self.configured = frozenset(configured)
        self.linger_us = int(linger_s * MICROS)
        self.cap = cap
        self.last_wanted: dict[str, int] = {}

    def update(self, wanted: Iterable[str], now_us: int) -> frozenset[str]:
        """The extra symbols to serve at ``now_us``, given the symbols with demand now."""
        for symbol, seen in list(self.last_wanted.items()):
            if now_us - seen > self.linger_us:
                del self.last_wanted[symbol]
        for symbol in sorted(wanted):
            if symbol in self.configured:
                continue
            if symbol in self.last_wanted or not self.cap or len(self.last_wanted) < self.cap:
                self.last_wanted[symbol] = now_us
        return frozenset(self.last_wanted)


def check_demand(record: Demand) -> None:
    """Raise ValueError unless ``record`` can count: a canonical symbol, subscribers not
    negative, a finite refresh period above zero."""
    if canonical_symbol(record.symbol) != record.symbol:
        raise ValueError(f"symbol {record.symbol!r} is not canonical")
    if record.subscribers < 0:
        raise ValueError(f"negative subscribers: {record.subscribers}")
    if not (math.isfinite(record.refresh_seconds) and record.refresh_seconds > 0):
        raise ValueError(f"refresh period {record.refresh_seconds} is not above zero")


async def follow_demand(
    settings: Settings,
    providers: Sequence[Provider],
    stop: asyncio.Event,
    progress: Progress,
    period: float = 0.5,
) -> None:
    """Read the demand topic until ``stop`` and keep the providers' extra symbols current;
    ``progress`` follows the reading (for ``/healthz``).

    Kafka trouble (no broker yet, a broker gone) is logged and retried every ``RETRY_S``
    seconds, from the topic's beginning, with what was read so far kept.
    """
    follower = _DemandFollower(settings, providers, period, progress)
    while not stop.is_set():
        try:
            await until_stopped(follower.follow(), stop)
        except (KafkaError, OSError) as error:
            log.warning(
                "demand not read (%s: %s); retrying in %.0f s", type(error).__name__, error, RETRY_S
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_S)


class _DemandFollower:
    """One reading of the demand topic into the book, the universe and the providers."""

    def __init__(
        self, settings: Settings, providers: Sequence[Provider], period: float, progress: Progress
    ) -> None:
        self.settings = settings
        self.providers = providers
        self.period = period
        self.progress = progress
        self.book = DemandBook()
        self.universe = Universe(
            settings.symbols, settings.demand_linger_seconds, settings.max_demanded_symbols
        )
        self.extra: frozenset[str] = frozenset()
        SYMBOLS_HELD.labels("ingest").set_function(lambda: len(self.extra))
        self.subscribed: frozenset[str] = frozenset()

    async def follow(self) -> None:
        """Wait for the topic, then read it from its beginning until cancelled."""
        topic = self.settings.topic(TopicRole.DEMAND)
        partitions = await partitions_once_created(self.settings, topic, RETRY_S)
        consumer = make_consumer(self.settings, "fiml-ingest-demand")
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            async with self.progress.watching(consumer, partitions):
                while True:
                    batches = await consumer.getmany(timeout_ms=int(self.period * 1000))
                    for records in batches.values():
                        for record in records:
                            demand = decode_or_skip(record, Demand, check_demand)
                            if demand is not None:
                                self.book.apply(demand)
                    self._serve(now_micros())
        finally:
            await consumer.stop()

    def _serve(self, now_us: int) -> None:
        if self.settings.symbol_evict_seconds:
            self.book.evict(now_us, int(self.settings.symbol_evict_seconds * MICROS))
        subscribers = self.book.subscribers(now_us)
        subscribed = frozenset(subscribers)
        if subscribed != self.subscribed:
            self.subscribed = subscribed
            for provider in self.providers:
                if isinstance(provider, NewsPoller):
                    provider.set_subscribed(subscribed)
        wanted = self.universe.update(subscribers, now_us)
        if wanted != self.extra:
            log.info("demand: serving %d extra symbols (%s)", len(wanted), ",".join(sorted(wanted)))
            self.extra = wanted
            for provider in self.providers:
                provider.set_demand(wanted)
