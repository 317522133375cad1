"""The ingest service: runs providers and writes what they report to Kafka.

Ticks go to ``fiml.ticks.raw`` keyed by symbol, statuses to ``fiml.provider.status`` keyed
by provider, through the :class:`~ingest.writer.TickWriter` (``ingest/writer.py``):
providers never wait for Kafka, and nothing is lost silently. Each provider runs as its own
task; :func:`~ingest.demand.follow_demand` tells them which symbols clients want beyond the
configured ones.
"""

from __future__ import annotations

import asyncio
import logging

from ingest.demand import follow_demand
from ingest.providers.registry import build_providers
from ingest.records import IngestCounters
from ingest.writer import TickWriter
from runtime.health import Progress, serve_health
from runtime.settings import Settings

log = logging.getLogger("fiml.ingest")


async def run_ingest(settings: Settings, stop: asyncio.Event) -> IngestCounters:
    """Run the configured providers until ``stop`` is set, then deliver what is buffered and
    return counters.

    Each provider runs as its own task, told by :func:`follow_demand` which symbols clients
    want beyond the configured ones. Providers report their own faults as statuses and never
    see Kafka's, so an exception out of one (a bug) stops the service rather than going
    unseen; Kafka trouble only ever waits.
    """
    providers = build_providers(settings)
    writer = TickWriter(settings)
    progress = Progress(settings.consumer_stall_seconds)
    async with serve_health(settings, writer.ready, progress.alive, writer.why_not_ready):
        log.info(
            "ingest started: providers=%s symbols=%d",
            ",".join(provider.name for provider in providers),
            len(settings.symbols),
        )
        delivery = asyncio.create_task(writer.run(stop), name="delivery")
        tasks = [
            asyncio.create_task(provider.run(writer.write, stop), name=provider.name)
            for provider in providers
        ]
        tasks.append(asyncio.create_task(follow_demand(settings, providers, stop, progress)))
        try:
            await asyncio.gather(*tasks, delivery)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, delivery, return_exceptions=True)
            counters = writer.counters
            log.info(
                "ingest stopped: %d ticks, %d news records, %d book events, %d statuses written, "
                "%d dropped, of %d records reported",
                counters.ticks,
                counters.news,
                counters.books,
                counters.statuses,
                counters.dropped,
                counters.reported,
            )
    return writer.counters
