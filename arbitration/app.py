"""The Faust worker: raw ticks in, arbitrated quotes out. All decisions live in QuoteEngine."""

from __future__ import annotations

import logging

import faust

from arbitration.quote_book import QuoteEngine
from fiml.settings import Settings
from schemas import DecodeError, RawTick, decode, encode

log = logging.getLogger("fiml.arbitration")


def build_app(settings: Settings) -> faust.App:
    """A Faust app whose agent turns ``ticks.raw`` into ``quotes`` for this configuration."""
    app = faust.App(
        f"{settings.topic_prefix}-arbitration",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_enabled=False,
        store="memory://",
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.partitions,
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )
    raw = app.topic(settings.topic("ticks.raw"), key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
    quotes = app.topic(settings.topic("quotes"), key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")
    engine = QuoteEngine(freshness_us=settings.freshness_ms * 1000)

    @app.agent(raw, name="arbitrate")
    async def arbitrate(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                tick = decode(event.value, RawTick)
            except DecodeError as error:
                log.warning("skipped undecodable record at offset %d: %s",
                            event.message.offset, error)
                continue
            quote = engine.apply(tick, seq=event.message.offset)
            if quote is not None:
                await quotes.send(key=quote.symbol.encode(), value=encode(quote))

    return app


def run_worker(settings: Settings) -> None:
    """Run the arbitration worker until SIGTERM or Ctrl-C."""
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
