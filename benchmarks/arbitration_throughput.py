"""Raw ticks per second through one arbitration worker process, beside a bare loop.

Usage: ``python benchmarks/arbitration_throughput.py [--quick] [--ticks N] [--out FILE]``

Fills a raw topic with synthetic ticks (three venues, simulated time, encoded once), then
measures in the same run, on the same broker:

- ``bare``: an aiokafka consume, decode, encode and produce loop (one output per tick,
  acks=all), the floor cost of any Python worker on this machine;
- ``worker``: ``python -m fiml arbitrate`` as its own process (Faust, the full engine, every
  output: quotes, candles, trades, DLQ), timed from its first committed offset to the last,
  so its start-up is not counted;
- ``alerts``: ``python -m fiml alerts evaluate`` (no rules) afterwards, over the quotes,
  candles and statuses the worker wrote, timed the same way by its offsets of the quotes
  topic and reported per raw tick: the alerts worker runs in a process of its own;
- ``faust``: the worker's Faust app with an agent that does nothing else (this script with
  ``--faust-floor MODE``), timed the same way: the most any Faust worker so configured can
  do here; ``batch`` takes the partition batches the worker takes
  (``arbitration/batch_delivery.py``), ``events`` Faust's per-message path in batches of
  events (``take_events``), as the worker did before.

Beside the rates, each side's CPU time per tick (all threads of the process, from
``/proc``): on a machine shared with other work the rates move with the load, the CPU time
much less, so ``cpu_ratio`` (bare CPU per tick over the worker's) is the steadier
comparison.

Uses ``FIML_KAFKA_BOOTSTRAP`` if set, else starts a local broker in a temporary directory.
Prints the results as JSON and writes them to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import faust
from aiokafka import TopicPartition
from harness import (
    bare_clients,
    cpu_seconds,
    end_offsets,
    run_and_report,
    run_facts,
    spawn_service,
)

from arbitration.app import raw_topic
from arbitration.batch_agent import batches
from arbitration.faust_worker import make_app, run_worker
from ingest.synthetic import SyntheticMarket
from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas import Quote, RawTick, decode, encode
from schemas.topics import TopicRole

SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "SPY", "BTC/USDT", "ETH/USDT", "SOL/USDT")


def synthetic_ticks(count: int) -> list[RawTick]:
    """``count`` ticks of the default venues in simulated time, 100 ms steps."""
    market = SyntheticMarket(SYMBOLS, seed=7, tick_hz=10)
    now = 1_763_807_400_000_000
    ticks: list[RawTick] = []
    while len(ticks) < count:
        ticks.extend(market.advance(now)[0])
        now += 100_000
    return ticks[:count]


async def fill(settings: Settings, ticks: list[RawTick]) -> None:
    """Write the ticks to the raw topic, keyed by symbol."""
    producer = make_producer(settings, "bench-fill", linger_ms=20)
    await producer.start()
    try:
        topic = settings.topic("ticks.raw")
        deliveries = [await producer.send(topic, encode(t), key=t.symbol.encode()) for t in ticks]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def bare_loop(settings: Settings, count: int, out_topic: str) -> dict:
    """Ticks per second and CPU time per tick of consume, decode, encode, produce with
    aiokafka alone, writing to ``out_topic``: not the quotes topic, whose records an alerts
    worker would then have to read as well."""
    async with bare_clients(settings, "ticks.raw") as (consumer, producer):
        seen, deliveries = 0, []
        start, cpu = time.perf_counter(), cpu_seconds(os.getpid())
        while seen < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    tick = decode(record.value, RawTick)
                    quote = Quote(
                        tick.symbol,
                        tick.ts_event,
                        tick.ts_ingest,
                        record.offset,
                        tick.price,
                        tick.provider,
                        1.0,
                        bid=tick.bid,
                        ask=tick.ask,
                    )
                    deliveries.append(
                        await producer.send(
                            out_topic, encode(quote), key=record.key, partition=tp.partition
                        )
                    )
                    seen += 1
        await asyncio.gather(*deliveries)
        return {
            "ticks_per_s": count / (time.perf_counter() - start),
            "cpu_s_per_tick": (cpu_seconds(os.getpid()) - cpu) / count,
        }


async def committed(settings: Settings, group: str, partitions: list[TopicPartition]) -> int:
    """Sum of the group's committed offsets over ``partitions``."""
    consumer = make_consumer(settings, "bench-probe", group_id=group)
    await consumer.start()
    try:
        total = 0
        for tp in partitions:
            total += await consumer.committed(tp) or 0
        return total
    finally:
        await consumer.stop()


FLOOR_MODES = ("batch", "events")
# The worker's batching before batch delivery: up to 4 000 events or what came in 5 ms.
EVENTS_PER_TAKE = 4000
TAKE_SECONDS = 0.005


def floor_app(settings: Settings, mode: str) -> faust.App:
    """The worker's Faust app taking the raw records and nothing else: as partition batches
    (``batch``), or as Faust events through ``take_events`` (``events``)."""
    app = make_app(settings, f"{settings.topic_prefix}-faust-floor-{mode}")
    if mode == "batch":

        @app.agent(raw_topic(app, settings), name="floor")
        async def floor(stream: faust.StreamT) -> None:
            async for _ in batches(stream):
                pass

    else:
        events = app.topic(
            settings.topic(TopicRole.RAW),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

        @app.agent(events, name="floor")
        async def floor_events(stream: faust.StreamT) -> None:
            async for _ in stream.take_events(EVENTS_PER_TAKE, within=TAKE_SECONDS):
                pass

    return app


def start_floor(settings: Settings, mode: str, log: Path) -> subprocess.Popen:
    """This script with ``--faust-floor MODE`` on these settings, logging to ``log``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    env.update(settings.to_env())
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, __file__, "--faust-floor", mode],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def process_rate(
    settings: Settings, count: int, process: subprocess.Popen, group: str, role: str = "ticks.raw"
) -> dict:
    """Records per second (``ticks_per_s``) and CPU time per record of a consumer group's one
    ``process`` on the topic of ``role``, from its first committed offset to ``count``, so
    that start-up is excluded."""
    partitions = await topic_partitions(settings, settings.topic(role))
    try:
        first = first_at = first_cpu = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            done = await committed(settings, group, partitions)
            now, cpu = time.perf_counter(), cpu_seconds(process.pid)
            if first is None and done > 0:
                first, first_at, first_cpu = done, now, cpu
            if done >= count:
                return {
                    "ticks_per_s": (done - first) / (now - first_at),
                    "cpu_s_per_tick": (cpu - first_cpu) / (done - first),
                    "measured_ticks": done - first,
                }
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{group} did not finish")
    finally:
        stop_process(process)


async def alerts_rate(settings: Settings, count: int, tmp: Path) -> dict:
    """The alerts worker (no rules) over what the worker wrote from ``count`` raw ticks: raw
    ticks' worth per second and CPU time per raw tick, timed as the worker is, by its
    committed offsets of the quotes topic."""
    quotes = await end_offsets(settings, await topic_partitions(settings, settings.topic("quotes")))
    found = await process_rate(
        settings,
        quotes,
        spawn_service(settings, "alerts evaluate", tmp / "alerts.log"),
        f"{settings.topic_prefix}-alerts",
        role="quotes",
    )
    per_tick = quotes / count
    return {
        "ticks_per_s": found["ticks_per_s"] / per_tick,
        "cpu_s_per_tick": found["cpu_s_per_tick"] * per_tick,
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
    ticks = synthetic_ticks(count)
    await fill(settings, ticks)
    bare = await bare_loop(settings, count, bare_out.topic("quotes"))
    worker = await process_rate(
        settings,
        count,
        spawn_service(settings, "arbitrate", tmp / "worker.log"),
        f"{prefix}-arbitration",
    )
    alerts = await alerts_rate(settings, count, tmp)
    floors = {
        mode: await process_rate(
            settings,
            count,
            start_floor(settings, mode, tmp / f"floor-{mode}.log"),
            f"{prefix}-faust-floor-{mode}",
        )
        for mode in FLOOR_MODES
    }
    return {
        **run_facts(),
        "ticks": count,
        "partitions": settings.partitions,
        "bare_ticks_per_s": round(bare["ticks_per_s"]),
        "worker_ticks_per_s": round(worker["ticks_per_s"]),
        "worker_measured_ticks": worker["measured_ticks"],
        "ratio": round(worker["ticks_per_s"] / bare["ticks_per_s"], 3),
        "bare_cpu_us_per_tick": round(bare["cpu_s_per_tick"] * 1e6, 1),
        "worker_cpu_us_per_tick": round(worker["cpu_s_per_tick"] * 1e6, 1),
        "cpu_ratio": round(bare["cpu_s_per_tick"] / worker["cpu_s_per_tick"], 3),
        "alerts_worker_ticks_per_s": round(alerts["ticks_per_s"]),
        "alerts_worker_cpu_us_per_tick": round(alerts["cpu_s_per_tick"] * 1e6, 1),
        **{
            f"faust_floor_{mode}_ticks_per_s": round(floor["ticks_per_s"])
            for mode, floor in floors.items()
        },
        **{
            f"faust_floor_{mode}_cpu_us_per_tick": round(floor["cpu_s_per_tick"] * 1e6, 1)
            for mode, floor in floors.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute in all")
    parser.add_argument("--ticks", type=int, help="raw ticks to process")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    parser.add_argument(
        "--faust-floor",
        choices=FLOOR_MODES,
        help="run the do-nothing Faust worker on the FIML_* settings",
    )
    args = parser.parse_args()
    if args.faust_floor:
        settings = Settings.from_env()
        run_worker(settings, lambda settings, _: floor_app(settings, args.faust_floor))
        return
    count = args.ticks or (60_000 if args.quick else 400_000)
    run_and_report(measure, count, args.out)


if __name__ == "__main__":
    main()
