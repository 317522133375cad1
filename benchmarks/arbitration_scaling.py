"""Arbitration scaled out: 1, 2 and 3 worker processes in one consumer group on the same raw
backlog.

Usage: ``python benchmarks/arbitration_scaling.py [--quick] [--ticks N] [--out FILE]``

For each number of workers: a fresh set of topics (6 raw partitions) filled with the same
synthetic ticks; the workers (``python -m fiml arbitrate``) start together; once the group is
stable with every worker in it, the aggregate rate and the CPU time per tick (all threads of
every worker, from ``/proc``) are measured from there to the last committed offset, so
start-up and the joins are not counted. Also each worker's resident memory at the end. On a
machine with fewer cores than workers the aggregate rate is bounded by the cores; the CPU per
tick says how well the work divides (``scaling_efficiency``: one worker's CPU per tick over
N workers').

Uses ``FIML_KAFKA_BOOTSTRAP`` if set, else starts a local broker in a temporary directory.
Prints the results as JSON and writes them to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from arbitration_throughput import committed, fill, synthetic_ticks
from harness import cpu_seconds, rss_bytes, run_and_report, run_facts, spawn_service

from runtime.kafka import topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas import RawTick

PARTITIONS = 6
WORKERS = (1, 2, 3)


async def group_state(settings: Settings, group: str) -> tuple[str, int]:
    """The consumer group's state and number of members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        _, _, state, _, _, members, *_ = response.groups[0]
        return state, len(members)
    finally:
        await admin.close()


async def run_workers(settings: Settings, ticks: list[RawTick], workers: int, tmp: Path) -> dict:
    """Aggregate ticks/s, CPU per tick and memory of ``workers`` workers on ``ticks``."""
    await create_topics(settings)
    await fill(settings, ticks)
    count = len(ticks)
    group = f"{settings.topic_prefix}-arbitration"
    partitions = await topic_partitions(settings, settings.topic("ticks.raw"))
    processes = [
        spawn_service(settings, "arbitrate", tmp / f"{settings.topic_prefix}-{n}.log")
        for n in range(workers)
    ]
    try:
        deadline = time.monotonic() + 900
        while await group_state(settings, group) != ("Stable", workers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} workers never formed a stable group")
            await asyncio.sleep(0.2)
        first = await committed(settings, group, partitions)
        start = time.perf_counter()
        cpu = sum(cpu_seconds(p.pid) for p in processes)
        while (done := await committed(settings, group, partitions)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} workers did not finish")
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - start
        used = sum(cpu_seconds(p.pid) for p in processes) - cpu
        memory = [rss_bytes(p.pid) for p in processes]
    finally:
        for process in processes:
            stop_process(process)
    return {
        "workers": workers,
        "measured_ticks": done - first,
        "ticks_per_s": round((done - first) / seconds),
        "cpu_us_per_tick": round(used / (done - first) * 1e6, 1),
        "rss_mb_per_worker": [round(m / 2**20) for m in memory],
    }


async def measure(bootstrap: str, count: int, tmp: Path) -> dict:
    ticks = synthetic_ticks(count)
    runs = []
    for workers in WORKERS:
        settings = Settings.from_env(
            {},
            kafka_bootstrap=bootstrap,
            topic_prefix=f"scale-{uuid.uuid4().hex[:8]}",
            partitions=PARTITIONS,
            log_level="warning",
        )
        runs.append(await run_workers(settings, ticks, workers, tmp))
    one = runs[0]["cpu_us_per_tick"]
    for run in runs:
        run["scaling_efficiency"] = round(one / run["cpu_us_per_tick"], 3)
    return {**run_facts(), "ticks": count, "partitions": PARTITIONS, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes in all")
    parser.add_argument("--ticks", type=int, help="raw ticks per run")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    run_and_report(measure, args.ticks or (150_000 if args.quick else 400_000), args.out)


if __name__ == "__main__":
    main()
