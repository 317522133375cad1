"""Order book events per second through the ``books`` agent on a real broker, beside bare loops.

Usage: ``python benchmarks/books_throughput.py [--quick] [--events N] [--out FILE]``

Fills ``books.raw`` with the synthetic venues' books (three venues, three crypto pairs, depth
50, 100 ms steps of simulated time, each record's Kafka time its ingest time so the agent
flushes a consolidated book per symbol per 250 ms as live), then measures in the same run,
on the same broker:

- ``bare``: an aiokafka consume and Avro decode of every ``BookEvent``, the floor of any
  Python reader of the topic;
- ``rule``: the same loop doing the agent's work without Faust: ``BookSlots.process`` per
  partition, each consolidated book encoded and produced (acks=all);
- ``worker``: ``python -m fiml arbitrate`` as its own process (Faust, the ``books`` agent,
  markers, acknowledged delivery), timed from its group's first committed offset on
  ``books.raw`` to the measured count, so its start-up is not counted (``TAIL`` more events
  follow the measured ones, so the last measured batch gets committed).

Each with its CPU time per event (``/proc``), steadier than the rates on a shared machine.
Then the gateway's side, beside a bare consume-and-broadcast server (``books_gateway.py``):
the agent's books drained from ``books.consolidated`` to WebSocket clients.
Uses ``FIML_KAFKA_BOOTSTRAP`` if set, else starts a local broker in a temporary directory.
Prints the results as JSON and writes them to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

from arbitration_throughput import process_rate
from books_gateway import measure_gateway
from harness import bare_clients, cpu_seconds, run_and_report, run_facts, spawn_service
from replay_throughput import fill

from domain.books.slots import BookSlots
from ingest.books.synthetic_books import SyntheticBooks
from ingest.synthetic import SyntheticMarket
from runtime.book_replay import book_slots
from runtime.kafka import topic_partitions
from runtime.partitioning import key_partition
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas import decode, encode
from schemas.books import BookEvent

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
START_US = 1_763_807_400_000_000
STEP_US = 100_000
# Events written after the measured ones, so the worker's last measured batch is committed
# (a partition's batch is acknowledged once its next one is taken).
TAIL = 3000


def synthetic_events(count: int) -> list[BookEvent]:
    """``count`` book events of the default synthetic venues for ``SYMBOLS``, 100 ms steps."""
    market = SyntheticMarket(list(SYMBOLS), seed=7, tick_hz=10)
    books = SyntheticBooks(seed=7, depth=50)
    now, events = START_US, []
    while len(events) < count:
        now += STEP_US
        market.advance(now)
        events.extend(books.advance(now, market.prices))
    return events[:count]


async def bare_loop(settings: Settings, count: int, out_topic: str | None) -> dict:
    """Events per second and CPU time per event of consume and decode with aiokafka alone;
    with an ``out_topic``, also the agent's rule and the delivery of its books there (not to
    the worker's topic, where the worker's restore would find them)."""
    async with bare_clients(settings, "books.raw") as (consumer, producer):
        slots: dict[int, BookSlots] = {}
        seen, books, deliveries = 0, 0, []
        start, cpu = time.perf_counter(), cpu_seconds(os.getpid())
        while seen < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                state = slots.get(tp.partition) or slots.setdefault(
                    tp.partition, book_slots(settings)
                )
                for record in records:
                    event = decode(record.value, BookEvent)
                    seen += 1
                    if out_topic is None:
                        continue
                    for book in state.process(record.offset, record.timestamp * 1000, event):
                        books += 1
                        deliveries.append(
                            await producer.send(
                                out_topic,
                                encode(book),
                                key=record.key,
                                partition=tp.partition,
                                timestamp_ms=record.timestamp,
                            )
                        )
        await asyncio.gather(*deliveries)
        return {
            "events_per_s": count / (time.perf_counter() - start),
            "cpu_s_per_event": (cpu_seconds(os.getpid()) - cpu) / count,
            "books": books,
        }


async def measure(bootstrap: str, count: int, tmp: Path) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {}, kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=6, log_level="warning"
    )
    bare_out = Settings.from_env(
        {}, kafka_bootstrap=bootstrap, topic_prefix=f"{prefix}-bare", partitions=6
    )
    await create_topics(settings)
    await create_topics(bare_out)
    events = synthetic_events(count + TAIL)
    await fill(settings, events, role="books.raw")
    bare = await bare_loop(settings, count, None)
    rule = await bare_loop(settings, count, bare_out.topic("books.consolidated"))
    worker = await process_rate(
        settings,
        count,
        spawn_service(settings, "arbitrate", tmp / "worker.log"),
        f"{prefix}-arbitration",
        role="books.raw",
    )
    partitions = await topic_partitions(settings, settings.topic("books.raw"))
    gateway = await measure_gateway(settings, events[:count], tmp)
    return {
        **run_facts(),
        "events": count,
        "symbols": len(SYMBOLS),
        "partitions_used": len({key_partition(s.encode(), len(partitions)) for s in SYMBOLS}),
        "books_per_run": rule["books"],
        "bare_events_per_s": round(bare["events_per_s"]),
        "rule_events_per_s": round(rule["events_per_s"]),
        "worker_events_per_s": round(worker["ticks_per_s"]),
        "worker_measured_events": worker["measured_ticks"],
        "ratio_worker_to_bare": round(worker["ticks_per_s"] / bare["events_per_s"], 3),
        "ratio_worker_to_rule": round(worker["ticks_per_s"] / rule["events_per_s"], 3),
        "bare_cpu_us_per_event": round(bare["cpu_s_per_event"] * 1e6, 1),
        "rule_cpu_us_per_event": round(rule["cpu_s_per_event"] * 1e6, 1),
        "worker_cpu_us_per_event": round(worker["cpu_s_per_tick"] * 1e6, 1),
        **gateway,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute in all")
    parser.add_argument("--events", type=int, help="book events to process")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    count = args.events or (15_000 if args.quick else 40_000)
    run_and_report(measure, count, args.out)


if __name__ == "__main__":
    main()
