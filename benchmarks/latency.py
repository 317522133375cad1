"""End-to-end latency from a raw tick's ``ts_ingest`` to a WebSocket client, beside Kafka's own.

Usage: ``python benchmarks/latency.py [--quick] [--seconds N] [--workers N] [--out FILE]``

A load generator (this process) writes RawTicks to the raw topic at a set rate through the
project's codec: 50 symbols, one provider, every fifth round of ticks trade prints, each
tick stamped ``ts_event = ts_ingest =`` the wall clock when it is made, with a price of
its own. So every item a client receives names the ingest time of its raw tick in its
``timestamp`` (a trade's, or the quote's driving tick's), and the latency of an item is
its arrival time minus that. At each rate (1,000 and 10,000 ticks/s) a warm-up is
discarded, a longer one before the first rate (on a broker just started, the pipeline's
first seconds ran 0.1 to 1 s late), then ``--seconds`` are measured; items count for the
rate whose window holds their ``ts_ingest``, and stragglers are awaited for a bounded
drain.

- ``kafka_two_hops`` (baseline): generator → raw topic → a relay process (aiokafka consume,
  produce the same bytes) → a second topic → a consumer process; the project's client
  settings on both hops.
- the pipeline: generator → raw topic → ``fiml arbitrate`` → quotes and trades topics →
  ``fiml gateway`` → WebSocket clients in another process: ``trades`` at interval_ms 100,
  ``price`` at 100, and ``price`` at 1000 on ten connections subscribed 100 ms apart;
  beside them, in the same process, a consumer of the trades topic times the first stage
  alone (``trades_in_topic``: raw tick to arbitrated trade readable in Kafka).

Uses ``FIML_KAFKA_BOOTSTRAP`` if set, else starts a local broker in a temporary directory.
Prints the results as JSON and writes them to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import multiprocessing
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import orjson
import websockets
from arbitration_throughput import committed
from harness import percentiles, run_and_report, run_facts, spawn_service
from replay_throughput import wait_ready

from runtime.clock import now_micros
from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import RawTick, Trade, decode, encode
from schemas.times import datetime_to_micros, parse_iso

SYMBOLS = tuple(f"L{n:02d}" for n in range(50))
PROVIDER = "bench:load"
TRADE_ROUND = 5
RATES = (1_000, 10_000)
# name, stream type, interval_ms, connections (subscribed 100 ms apart)
SUBSCRIPTIONS = (
    ("trades_100", "trades", 100, 1),
    ("price_100", "price", 100, 1),
    ("price_1000", "price", 1000, 10),
)
BASELINE = "kafka_two_hops"
TRADES_TOPIC = "trades_in_topic"
TARGET_MS = 50.0
TARGET_BASELINE_FACTOR = 5.0

Samples = dict[str, list[tuple[int, int]]]  # kind -> (ts_ingest µs, latency µs)


@dataclass(frozen=True)
class Plan:
    """How long each part runs, in seconds, and how many arbitration workers share the
    raw partitions."""

    first_warm_s: float
    warm_s: float
    measure_s: float
    drain_s: float
    workers: int = 1


def make_tick(n: int, now_us: int) -> RawTick:
    """The ``n``-th tick of the load, made at ``now_us``; every fifth round is trades."""
    symbol = SYMBOLS[n % len(SYMBOLS)]
    price = 100.0 + (n % 100_000) / 1000
    if (n // len(SYMBOLS)) % TRADE_ROUND == TRADE_ROUND - 1:
        return RawTick(
            symbol,
            PROVIDER,
            "TRADE",
            now_us,
            now_us,
            n,
            price,
            trade_id=f"b{n}",
            trade_size=1.0,
            side="buy",
        )
    return RawTick(
        symbol,
        PROVIDER,
        "QUOTE",
        now_us,
        now_us,
        n,
        price,
        bid=price - 0.005,
        ask=price + 0.005,
        volume=float(n),
    )


@dataclass
class LoadGenerator:
    """Writes :func:`make_tick` ticks to the raw topic at a set rate."""

    settings: Settings
    sent: int = 0
    failed: int = 0
    last_us: int = 0
    last_trade_us: int = 0
    producer: Any = None

    async def __aenter__(self) -> LoadGenerator:
        self.producer = make_producer(self.settings, "bench-load")
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    def _count_failure(self, delivery: asyncio.Future) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            self.failed += 1

    async def run(self, rate: float, seconds: float) -> dict[str, float]:
        """Produce at ``rate`` ticks/s for ``seconds``; the ticks, trades and rate achieved."""
        topic = self.settings.topic("ticks.raw")
        loop = asyncio.get_running_loop()
        first, trades = self.sent, 0
        start = loop.time()
        while (elapsed := loop.time() - start) < seconds:
            due = first + int(elapsed * rate) + 1
            while self.sent < due:
                tick = make_tick(self.sent, now_micros())
                delivery = await self.producer.send(topic, encode(tick), key=tick.symbol.encode())
                delivery.add_done_callback(self._count_failure)
                self.last_us = tick.ts_ingest
                if tick.kind == "TRADE":
                    trades += 1
                    self.last_trade_us = tick.ts_ingest
                self.sent += 1
            await asyncio.sleep(0.002)
        ticks = self.sent - first
        return {"ticks": ticks, "trades": trades, "achieved": ticks / (loop.time() - start)}


def iso_micros(text: str) -> int:
    """Microseconds since the epoch of an ISO 8601 UTC time such as the items carry."""
    return datetime_to_micros(parse_iso(text))


async def _until(stop: Event) -> None:
    while not stop.is_set():  # noqa: ASYNC110 (set by another process: no asyncio event)
        await asyncio.sleep(0.1)


def _run_client(
    main: Callable[[Samples, Any, Callable[[], None]], Awaitable[None]],
    ready: Event,
    stop: Event,
    newest: Any,
    results: Any,
) -> None:
    """Run ``main`` (which calls its last argument once subscribed) until ``stop`` is set,
    then put what it sampled on ``results``."""

    async def run() -> Samples:
        samples: Samples = {}
        task = asyncio.create_task(main(samples, newest, ready.set))
        waiter = asyncio.create_task(_until(stop))
        done, _ = await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        if task in done and task.exception() is not None:
            raise task.exception()
        return samples

    results.put(asyncio.run(run()))


async def _subscriber(
    url: str,
    kind: str,
    stream: str,
    interval: int,
    delay: float,
    samples: Samples,
    newest: Any,
    acked: asyncio.Event,
) -> None:
    await asyncio.sleep(delay)
    out = samples.setdefault(kind, [])
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(
            orjson.dumps(
                {
                    "type": "subscribe",
                    "stream_type": stream,
                    "symbols": list(SYMBOLS),
                    "interval_ms": interval,
                }
            ).decode()
        )
        async for raw in ws:
            received = now_micros()
            message = orjson.loads(raw)
            if message["type"] == "subscription_ack":
                acked.set()
            elif message["type"] == "error":
                raise RuntimeError(message["message"])
            elif message["type"] == "data":
                stamps = [iso_micros(item["timestamp"]) for item in message["data"]]
                out.extend((stamp, received - stamp) for stamp in stamps)
                if stream == "trades" and stamps:
                    newest.value = max(newest.value, *stamps)


async def _websocket_clients(
    url: str, settings: Settings, samples: Samples, newest: Any, subscribed: Callable[[], None]
) -> None:
    acks, tasks = [], []
    for kind, stream, interval, connections in SUBSCRIPTIONS:
        for n in range(connections):
            acks.append(asyncio.Event())
            tasks.append(
                asyncio.create_task(
                    _subscriber(url, kind, stream, interval, n / 10, samples, newest, acks[-1])
                )
            )
    topic = asyncio.Event()
    tasks.append(
        asyncio.create_task(
            _topic_arrivals(settings, "trades", Trade, TRADES_TOPIC, samples, None, topic.set)
        )
    )
    async with asyncio.timeout(60):
        await asyncio.gather(topic.wait(), *(ack.wait() for ack in acks))
    subscribed()
    await asyncio.gather(*tasks)


def websocket_client(
    target: tuple[str, Settings], ready: Event, stop: Event, newest: Any, results: Any
) -> None:
    """The pipeline's client process: every subscription of :data:`SUBSCRIPTIONS`, and a
    consumer timing the trades' arrival in their topic (the first of the two stages)."""
    _run_client(functools.partial(_websocket_clients, *target), ready, stop, newest, results)


async def _topic_arrivals(
    settings: Settings,
    role: str,
    record_type: type,
    kind: str,
    samples: Samples,
    newest: Any,
    subscribed: Callable[[], None],
) -> None:
    out = samples.setdefault(kind, [])
    async with _assigned_at_end(settings, role, f"bench-{kind}") as consumer:
        subscribed()
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            received = now_micros()
            for records in batches.values():
                for record in records:
                    stamp = decode(record.value, record_type).ts_ingest
                    out.append((stamp, received - stamp))
                    if newest is not None:
                        newest.value = max(newest.value, stamp)


def kafka_client(settings: Settings, ready: Event, stop: Event, newest: Any, results: Any) -> None:
    """The baseline's last hop: consume the relayed ticks and sample their latency."""
    _run_client(
        functools.partial(_topic_arrivals, settings, "quotes", RawTick, BASELINE),
        ready,
        stop,
        newest,
        results,
    )


@contextlib.asynccontextmanager
async def _assigned_at_end(settings: Settings, role: str, client_id: str):
    consumer = make_consumer(settings, client_id)
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, settings.topic(role))
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        yield consumer
    finally:
        await consumer.stop()


async def _relay(settings: Settings, ready: Event, stop: Event) -> None:
    producer = make_producer(settings, "bench-relay")
    await producer.start()
    try:
        async with _assigned_at_end(settings, "ticks.raw", "bench-relay") as consumer:
            ready.set()
            hop = settings.topic("quotes")
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                for partition, records in batches.items():
                    for record in records:
                        await producer.send(
                            hop, record.value, key=record.key, partition=partition.partition
                        )
    finally:
        await producer.stop()


def relay(settings: Settings, ready: Event, stop: Event) -> None:
    """The baseline's middle hop: the raw topic's bytes, as they are, to a second topic."""
    asyncio.run(_relay(settings, ready, stop))


@dataclass
class Clients:
    """A client process, its readiness, its stop signal and the newest ts_ingest it saw."""

    target: Callable[..., None]
    argument: object
    context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))

    def __post_init__(self) -> None:
        self.ready, self.stop = self.context.Event(), self.context.Event()
        self.newest = self.context.Value("q", 0)
        self.results = self.context.Queue()
        self.process = self.context.Process(
            target=self.target,
            args=(self.argument, self.ready, self.stop, self.newest, self.results),
        )

    async def start(self) -> None:
        self.process.start()
        if not await asyncio.to_thread(self.ready.wait, 90):
            raise TimeoutError("the client process did not subscribe")

    async def finish(self) -> Samples:
        self.stop.set()
        samples = await asyncio.to_thread(self.results.get, True, 60)
        await asyncio.to_thread(self.process.join, 30)
        return samples


async def drain(newest: Any, last_us: int, limit_s: float) -> float:
    """Wait until ``newest`` reaches ``last_us``, at most ``limit_s``; the seconds waited."""
    start = time.monotonic()
    while newest.value < last_us and time.monotonic() - start < limit_s:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return round(time.monotonic() - start, 1)


async def run_rates(
    generator: LoadGenerator, plan: Plan, progress: Callable[[], Awaitable[int]] | None = None
) -> list[dict]:
    """Each rate of :data:`RATES`: a warm-up (the first one longer), then a measured
    window."""
    phases = []
    for rate in RATES:
        await generator.run(rate, plan.warm_s if phases else plan.first_warm_s)
        before = asyncio.create_task(progress()) if progress else None
        start = now_micros()
        produced = await generator.run(rate, plan.measure_s)
        phase = {"rate": rate, "window": (start, now_micros()), **produced}
        if progress and before:
            phase["processed"] = (await before, await progress())
        phases.append(phase)
    return phases


def summarise(samples: Samples, phase: dict, kind: str) -> dict[str, object]:
    """Latency percentiles (ms) of the items of ``kind`` ingested in the phase's window."""
    start, end = phase["window"]
    latencies = [latency / 1000 for stamp, latency in samples.get(kind, ()) if start <= stamp < end]
    result: dict[str, object] = {"samples": len(latencies), **percentiles(latencies)}
    if kind.startswith("trades"):
        result["delivered"] = round(len(latencies) / max(1, phase["trades"]), 4)
    return result


async def measure_baseline(settings: Settings, plan: Plan) -> dict[str, dict]:
    """Produce → relay process → consumer process latency at each rate."""
    await create_topics(settings)
    context = multiprocessing.get_context("spawn")
    relay_ready, relay_stop = context.Event(), context.Event()
    relaying = context.Process(target=relay, args=(settings, relay_ready, relay_stop))
    relaying.start()
    clients = Clients(kafka_client, settings)
    try:
        if not await asyncio.to_thread(relay_ready.wait, 90):
            raise TimeoutError("the relay did not start")
        await clients.start()
        async with LoadGenerator(settings) as generator:
            phases = await run_rates(generator, plan)
        waited = await drain(clients.newest, generator.last_us, plan.drain_s)
        samples = await clients.finish()
    finally:
        relay_stop.set()
        await asyncio.to_thread(relaying.join, 30)
        if clients.process.is_alive():
            clients.process.kill()
    return {
        str(phase["rate"]): {
            "achieved_rate": round(phase["achieved"]),
            "drain_s": waited,
            **summarise(samples, phase, BASELINE),
        }
        for phase in phases
    }


async def measure_pipeline(settings: Settings, plan: Plan, tmp: Path) -> dict[str, dict]:
    """Produce → ``fiml arbitrate`` → ``fiml gateway`` → WebSocket client process."""
    await create_topics(settings)
    raw = await topic_partitions(settings, settings.topic("ticks.raw"))
    group = f"{settings.topic_prefix}-arbitration"
    services = [
        *(
            spawn_service(settings, "arbitrate", tmp / f"arbitrate-{n}.log")
            for n in range(plan.workers)
        ),
        spawn_service(settings, "gateway", tmp / "gateway.log"),
    ]
    clients = Clients(
        websocket_client, (f"ws://127.0.0.1:{settings.gateway_port}/ws/stream", settings)
    )
    try:
        await wait_ready(settings.gateway_port)
        await clients.start()
        async with LoadGenerator(settings) as generator:
            for _ in range(60):
                if clients.newest.value:
                    break
                await generator.run(200, 1.0)
            else:
                raise TimeoutError("no trade reached the client within a minute")
            phases = await run_rates(
                generator, plan, functools.partial(committed, settings, group, raw)
            )
            last_trade = generator.last_trade_us
            failed = generator.failed
        waited = await drain(clients.newest, last_trade, plan.drain_s)
        processed_at_end = await committed(settings, group, raw)
        samples = await clients.finish()
    finally:
        for service in services:
            stop_process(service)
        if clients.process.is_alive():
            clients.process.kill()
    result = {}
    for phase in phases:
        before, after = phase["processed"]
        seconds = (phase["window"][1] - phase["window"][0]) / 1e6
        result[str(phase["rate"])] = {
            "achieved_rate": round(phase["achieved"]),
            "arbitration_ticks_per_s": round((after - before) / seconds),
            "backlog_at_end_of_window": generator.sent - after if phase is phases[-1] else None,
            **{kind: summarise(samples, phase, kind) for kind, *_ in SUBSCRIPTIONS},
            TRADES_TOPIC: summarise(samples, phase, TRADES_TOPIC),
        }
    result["drain_s"] = waited
    result["backlog_after_drain"] = generator.sent - processed_at_end
    result["failed_sends"] = failed
    return result


def verdicts(baseline: dict, pipeline: dict, rate: int) -> dict[str, dict]:
    """The targets at ``rate``: p99 under 50 ms + interval and under 5x the baseline +
    interval, with every trade delivered."""
    kafka_p99 = baseline[str(rate)]["p99"]
    result = {}
    for kind, _, interval, _ in SUBSCRIPTIONS:
        measured = pipeline[str(rate)][kind]
        p99 = measured["p99"]
        absolute = TARGET_MS + interval
        relative = None if kafka_p99 is None else TARGET_BASELINE_FACTOR * kafka_p99 + interval
        complete = measured.get("delivered", 1.0) >= 1.0
        result[kind] = {
            "p99_ms": p99,
            "limit_ms": absolute,
            "limit_vs_baseline_ms": relative,
            "ratio_to_baseline_p99": None if not (p99 and kafka_p99) else round(p99 / kafka_p99, 1),
            "met": bool(
                p99 is not None
                and complete
                and p99 < absolute
                and relative is not None
                and p99 < relative
            ),
        }
    return result


async def measure(plan: Plan, bootstrap: str, _: int, tmp: Path) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    common = {
        "kafka_bootstrap": bootstrap,
        "partitions": 6,
        "log_level": "warning",
        "symbols": SYMBOLS,  # the universe the gateway serves
    }
    baseline = await measure_baseline(
        Settings.from_env({}, topic_prefix=f"{prefix}-kafka", **common), plan
    )
    pipeline = await measure_pipeline(
        Settings.from_env({}, topic_prefix=prefix, gateway_port=free_port(), **common), plan, tmp
    )
    return {
        **run_facts(),
        "symbols": len(SYMBOLS),
        "first_warm_s": plan.first_warm_s,
        "warm_s": plan.warm_s,
        "measure_s": plan.measure_s,
        "arbitration_workers": plan.workers,
        "baseline": baseline,
        "pipeline": pipeline,
        "targets": {str(rate): verdicts(baseline, pipeline, rate) for rate in RATES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about two minutes in all")
    parser.add_argument("--seconds", type=float, help="measured seconds per rate")
    parser.add_argument("--workers", type=int, default=1, help="arbitration worker processes")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    plan = Plan(
        first_warm_s=20.0 if args.quick else 30.0,
        warm_s=3.0 if args.quick else 5.0,
        measure_s=seconds,
        drain_s=20.0 if args.quick else 120.0,
        workers=args.workers,
    )
    run_and_report(functools.partial(measure, plan), 0, args.out)


if __name__ == "__main__":
    main()
