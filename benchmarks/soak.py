"""A soak: the whole system under steady load, watching memory and error logs.

Usage: ``python benchmarks/soak.py [--minutes 30] [--clients 500] [--out FILE]``

Runs ``fiml ingest`` (the synthetic provider: 50 symbols, 3 venues, about 5,000 raw ticks/s
with trades), ``fiml arbitrate`` and ``fiml gateway`` as processes, and 500 WebSocket
clients in two client processes (each 10 symbols at interval_ms 1000: eight in ten
``price``, one ``trades``, one ``ohlcv``). Every ``--sample-seconds`` it samples the RSS of
every process: the broker (when started here), the three services, the client processes
and this one. At the end it reports, per process, every sample and the growth of RSS from
the end of the warm-up (the first fifth of the run) to the end, and counts the ERROR lines
each service and the broker logged. Targets (issue 8): growth under 5% and no ERROR line.

Not part of CI: it runs for ``--minutes`` (30 by default). Uses ``FIML_KAFKA_BOOTSTRAP``
if set, else starts a local broker in a temporary directory. Prints the results as JSON
and writes them to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import time
import uuid
from pathlib import Path

from arbitration_throughput import committed
from fanout import ClientPool
from harness import (
    end_offsets,
    raise_open_files,
    rss_bytes,
    run_and_report,
    run_facts,
    spawn_service,
)
from replay_throughput import wait_ready

from runtime.kafka import topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics

SYMBOLS = tuple(f"K{n:02d}" for n in range(50))
TICK_HZ = 28.0  # 50 symbols x 3 venues: about 5,000 ticks/s with trades, less outages
PER_CLIENT = 10
WARM_UP_SHARE = 0.2
TARGET_GROWTH = 0.05
SERVICES = ("ingest", "arbitrate", "gateway")


def soak_request(n: int) -> dict[str, object]:
    """The ``n``-th client's subscription: 10 of the 50 symbols; price, trades or ohlcv."""
    stream = {0: "trades", 1: "ohlcv"}.get(n % 10, "price")
    first = (n * PER_CLIENT) % len(SYMBOLS)
    return {
        "type": "subscribe",
        "stream_type": stream,
        "interval_ms": 1000,
        "symbols": [SYMBOLS[(first + k) % len(SYMBOLS)] for k in range(PER_CLIENT)],
    }


def growth(samples: list[int], warm: int) -> float | None:
    """Relative growth from the end of the warm-up to the end: the mean of three samples
    at each end, so one garbage collection does not decide it."""
    steady = samples[warm:]
    if len(steady) < 2:
        return None
    edge = max(1, min(3, len(steady) // 2))
    first = sum(steady[:edge]) / edge
    last = sum(steady[-edge:]) / edge
    return round((last - first) / first, 4)


def error_lines(log: Path) -> dict[str, object]:
    """How many ERROR lines a service's JSON log or the broker's log4j log has, and the
    first of them (cut to 300 characters)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = [line for line in text.splitlines() if '"level":"ERROR"' in line or "] ERROR " in line]
    return {"count": len(found), "first": found[0][:300] if found else None}


async def measure(options: tuple[float, int, float], bootstrap: str, _: int, tmp: Path) -> dict:
    minutes, clients, sample_s = options
    raise_open_files()
    settings = Settings.from_env(
        {},
        kafka_bootstrap=bootstrap,
        partitions=6,
        topic_prefix=f"soak-{uuid.uuid4().hex[:8]}",
        gateway_port=free_port(),
        symbols=SYMBOLS,
        synthetic_tick_hz=TICK_HZ,
    )
    await create_topics(settings)
    raw = await topic_partitions(settings, settings.topic("ticks.raw"))
    logs = {name: tmp / f"{name}.log" for name in SERVICES}
    services = {name: spawn_service(settings, name, logs[name]) for name in SERVICES}
    pool = ClientPool()
    pool.start()
    broker_pid_file = tmp / "broker" / "broker.pid"
    try:
        await wait_ready(settings.gateway_port)
        connected = await pool.grow(
            f"ws://127.0.0.1:{settings.gateway_port}/ws/stream", clients, soak_request
        )
        pids = {name: process.pid for name, process in services.items()}
        pids.update({f"clients-{n}": worker.pid for n, worker in enumerate(pool.workers)})
        pids["benchmark"] = os.getpid()
        if broker_pid_file.exists():
            pids["broker"] = int(broker_pid_file.read_text())
        rss: dict[str, list[int]] = {name: [] for name in pids}
        written_before = await end_offsets(settings, raw)
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            for name, pid in pids.items():
                rss[name].append(rss_bytes(pid))
            dead = [name for name, process in services.items() if process.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} died during the soak")
            await asyncio.sleep(sample_s)
        elapsed = time.monotonic() - started
        written = await end_offsets(settings, raw) - written_before
        processed = await committed(settings, f"{settings.topic_prefix}-arbitration", raw)
        tally = await pool.tally()
    finally:
        for process in services.values():
            stop_process(process)
        pool.stop()
    warm = max(1, int(len(next(iter(rss.values()))) * WARM_UP_SHARE))
    memory = {
        name: {
            "first_mb": round(samples[warm] / 2**20, 1),
            "last_mb": round(samples[-1] / 2**20, 1),
            "growth": growth(samples, warm),
            "samples_mb": [round(sample / 2**20, 1) for sample in samples],
        }
        for name, samples in rss.items()
    }
    errors = {name: error_lines(log) for name, log in logs.items()}
    errors["broker"] = error_lines(tmp / "broker" / "broker.log")
    logged = sum(found["count"] for found in errors.values())
    worst = max((m["growth"] for m in memory.values() if m["growth"] is not None), default=None)
    return {
        **run_facts(),
        "minutes": minutes,
        "clients": clients,
        "connected": connected,
        "samples": len(next(iter(rss.values()))),
        "raw_ticks_per_s": round(written / elapsed),
        "arbitration_backlog_at_end": written_before + written - processed,
        "memory": memory,
        "error_lines": errors,
        "clients_seen": tally,
        "targets": {
            "memory_growth": {
                "target": TARGET_GROWTH,
                "worst": worst,
                "met": worst is not None and worst < TARGET_GROWTH,
            },
            "error_lines": {
                "target": 0,
                "value": logged,
                "met": logged == 0 and tally["errors"] == 0,
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run")
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients")
    parser.add_argument("--sample-seconds", type=float, help="between RSS samples")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    sample_s = args.sample_seconds or max(1.0, min(30.0, args.minutes * 60 / 60))
    options = (args.minutes, args.clients, sample_s)
    run_and_report(functools.partial(measure, options), 0, args.out)


if __name__ == "__main__":
    main()
