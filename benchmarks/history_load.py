"""History load: a WebSocket client's delivery pace while REST history requests run.

Usage: ``python benchmarks/history_load.py [--quick] [--requests N] [--seconds S] [--out FILE]``

The quotes topic (3 partitions) is filled with ``--fill`` quotes of 300 symbols over the
last hour; a publisher (this process) then writes a quote of ``LIVE`` every 50 ms. One
gateway process serves a WebSocket client (this process) subscribed to ``LIVE``'s quotes at
``interval_ms`` 100. Two phases of ``--seconds`` each, measured the same way:

- **quiet**: nothing else runs: the normal range of the client's pace (the baseline);
- **load**: a child process keeps ``--requests`` REST history requests in flight (more than
  ``FIML_MAX_HISTORY_REQUESTS``, 8), each a page of 1000 quotes of one of the 300 symbols
  over the whole hour, a new one as soon as one is answered; it counts the answers by
  status (429 beyond the cap).

For each phase, the **gap** between consecutive data messages (100 ms when on time) and the
**lag** of each (its arrival minus its quote's ``ts_event``, set when the quote was
written), p50 and p99. The result says whether the loaded p99 gap stays within twice the
quiet one and 100 ms above it (the "normal range"), and the machine's load average.
Uses ``FIML_KAFKA_BOOTSTRAP`` if set, else starts a local broker in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import websockets
from fanout import bench_quote
from harness import percentiles, run_and_report, run_facts, spawn_service
from replay_throughput import wait_ready

from runtime.clock import now_micros
from runtime.kafka import make_producer
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import encode
from schemas.times import datetime_to_micros, micros_to_iso, parse_iso

LIVE = "LIVE"
HISTORY_SYMBOLS = tuple(f"H{n:03d}" for n in range(300))
INTERVAL_MS = 100
PUBLISH_PERIOD = 0.05
HOUR_US = 3_600_000_000


async def fill(settings: Settings, count: int) -> int:
    """``count`` quotes of the history symbols spread over the last hour; when it began."""
    producer = make_producer(settings, "bench-history-fill", linger_ms=50)
    await producer.start()
    began = now_micros() - HOUR_US
    try:
        step = HOUR_US // count
        sends = []
        for n in range(count):
            symbol = HISTORY_SYMBOLS[n % len(HISTORY_SYMBOLS)]
            quote = bench_quote(symbol, n, began + n * step)
            sends.append(
                await producer.send(settings.topic("quotes"), encode(quote), key=symbol.encode())
            )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return began


async def publish(settings: Settings, stop: asyncio.Event) -> None:
    """A quote of ``LIVE`` every ``PUBLISH_PERIOD`` until ``stop``."""
    producer = make_producer(settings, "bench-history-live")
    await producer.start()
    try:
        seq = 0
        while not stop.is_set():
            seq += 1
            quote = bench_quote(LIVE, seq, now_micros())
            await producer.send(settings.topic("quotes"), encode(quote), key=LIVE.encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PUBLISH_PERIOD)
    finally:
        await producer.stop()


class Client:
    """The WebSocket client: the arrival time and quote time of every data message."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int]] = []

    async def run(self, url: str) -> None:
        async with websockets.connect(url) as ws:
            subscribe = {
                "type": "subscribe",
                "stream_type": "quote",
                "symbols": [LIVE],
                "interval_ms": INTERVAL_MS,
            }
            await ws.send(json.dumps(subscribe))
            async for text in ws:
                message = orjson.loads(text)
                if message["type"] == "data":
                    stamp = datetime_to_micros(parse_iso(message["data"][-1]["timestamp"]))
                    self.arrivals.append((time.monotonic(), now_micros() - stamp))

    def phase(self, since: float, until: float) -> dict:
        """Gap and lag percentiles (ms) of the messages that arrived in a phase."""
        chosen = [(at, lag) for at, lag in self.arrivals if since <= at < until]
        gaps = [(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(chosen)]
        return {
            "messages": len(chosen),
            "gap_ms": percentiles(gaps, (50, 99)),
            "max_gap_ms": round(max(gaps), 1) if gaps else None,
            "lag_ms": percentiles([lag / 1000 for _, lag in chosen], (50, 99)),
        }


async def history_load(base: str, requests: int, seconds: float, start: str) -> dict:
    """Keep ``requests`` history requests in flight for ``seconds``; answers by status."""
    statuses: Counter[str] = Counter()
    took: list[float] = []
    deadline = time.monotonic() + seconds

    async def one_after_another(worker: int, http: httpx.AsyncClient) -> None:
        n = worker
        while time.monotonic() < deadline:
            symbol = HISTORY_SYMBOLS[n % len(HISTORY_SYMBOLS)]
            n += requests
            began = time.monotonic()
            answer = await http.get(f"/v1/quotes/{symbol}", params={"start": start})
            statuses[str(answer.status_code)] += 1
            if answer.status_code == 200:
                took.append((time.monotonic() - began) * 1000)
            else:
                await asyncio.sleep(0.05)  # a refused client waits a little, as told

    limits = httpx.Limits(max_connections=requests)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        await asyncio.gather(*(one_after_another(w, http) for w in range(requests)))
    return {"answers": dict(statuses), "answered_ms": percentiles(took, (50, 99))}


async def run_load(base: str, requests: int, seconds: float, start: str) -> dict:
    """``history_load`` in a child process, so that it does not share the client's loop."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--load",
        json.dumps([base, requests, seconds, start]),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    return json.loads(out)


async def measure(options: tuple[int, float, int], bootstrap: str, _: int, tmp: Path) -> dict:
    requests, seconds, count = options
    settings = Settings.from_env(
        {},
        kafka_bootstrap=bootstrap,
        partitions=3,
        topic_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        gateway_port=free_port(),
        log_level="warning",
        symbols=(LIVE, *HISTORY_SYMBOLS),
    )
    await create_topics(settings)
    began = await fill(settings, count)
    stop = asyncio.Event()
    publisher = asyncio.create_task(publish(settings, stop))
    gateway = spawn_service(settings, "gateway", tmp / "gateway.log")
    client = Client()
    load_before = os.getloadavg()
    try:
        await wait_ready(settings.gateway_port)
        reader = asyncio.create_task(
            client.run(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream")
        )
        await asyncio.sleep(3)  # settle
        quiet_from = time.monotonic()
        await asyncio.sleep(seconds)
        load_from = time.monotonic()
        base = f"http://127.0.0.1:{settings.gateway_port}"
        load = await run_load(base, requests, seconds, micros_to_iso(began))
        load_until = time.monotonic()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    finally:
        stop.set()
        await publisher
        stop_process(gateway)
    quiet, loaded = client.phase(quiet_from, load_from), client.phase(load_from, load_until)
    normal = quiet["gap_ms"]["p99"]
    worst = loaded["gap_ms"]["p99"]
    within = None not in (normal, worst) and worst <= max(2 * normal, normal + 100)
    return {
        **run_facts(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "history_records": count,
        "history_symbols": len(HISTORY_SYMBOLS),
        "parallel_requests": requests,
        "max_history_requests": settings.max_history_requests,
        "measure_s": seconds,
        "quiet": quiet,
        "load": {**loaded, **load},
        "loaded_p99_gap_within_normal_range": within,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer records, shorter phases")
    parser.add_argument("--requests", type=int, default=32, help="history requests in flight")
    parser.add_argument("--seconds", type=float, help="seconds per phase")
    parser.add_argument("--fill", type=int, help="quotes in the topic's hour of history")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the child process's arguments
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(history_load(*json.loads(args.load)))))
        return
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    count = args.fill or (60_000 if args.quick else 300_000)
    run_and_report(functools.partial(measure, (args.requests, seconds, count)), 0, args.out)


if __name__ == "__main__":
    main()
