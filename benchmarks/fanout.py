"""Fan-out: how many WebSocket clients one gateway process serves, beside a bare broadcast.

Usage: ``python benchmarks/fanout.py [--quick] [--steps 500,1000,...] [--seconds N] [--out FILE]``

A publisher (this process) writes quotes of 100 symbols to the quotes topic, each symbol
every 250 ms. Client processes (two, each from its own 127.0.0.x source address) step the
number of connections up; each connection subscribes to 10 symbols at interval_ms 1000.
At each step, after a settling pause, ``--seconds`` are measured:

- **delivery lag** of each data message: its arrival minus the moment it was due, the
  subscription's cadence slot (the first data message's ``timestamp`` plus whole
  intervals; a message built up to a tenth of an interval before its slot, as the first
  one's own start-up delay allows, counts for that slot), so a pacer that runs late
  counts as lag;
- **messages/s** received by all clients, against the ``clients / s`` that are due;
- **gateway RSS per connection**: RSS now minus RSS before the first client, over clients;
- **server CPU**: cores the server process used while measuring, and CPU µs per message
  delivered (less sensitive to other load on the machine than the rates).

Baseline in the same run: a process with the ``websockets`` library's server broadcasting
one pre-encoded data message of the same shape (10 price items) to every client once a
second, its ``timestamp`` the slot it is due at, measured by the same clients the same way.
Targets (issue 8): 10,000 clients with p99 lag under 250 ms, at least 50% of the
baseline's messages/s and under 50 KB of gateway memory per connection.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import websockets
from harness import (
    cpu_seconds,
    percentiles,
    raise_open_files,
    rss_bytes,
    run_and_report,
    run_facts,
    spawn_service,
)
from replay_throughput import wait_ready
from websockets.asyncio.server import broadcast, serve

from gateway.items import price_item
from runtime.clock import now_iso, now_micros
from runtime.kafka import make_producer
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import Quote, encode
from schemas.times import datetime_to_micros, micros_to_iso, parse_iso

SYMBOLS = tuple(f"F{n:03d}" for n in range(100))
PER_CLIENT = 10
INTERVAL_MS = 1000
QUOTE_PERIOD = 0.25
CLIENT_PROCESSES = 2
LAG_LIMIT_MS = 250.0
TARGET_CLIENTS = 10_000
TARGET_BASELINE_SHARE = 0.5
TARGET_BYTES_PER_CONNECTION = 50 * 1024
CONNECT_CONCURRENCY = 100
GROW_LIMIT_S = 300
TIMESTAMP_FIELD = '"timestamp":"'


def subscribe_request(n: int) -> dict[str, object]:
    """The subscription of the ``n``-th client: 10 symbols of the 100, at 1000 ms."""
    first = (n * PER_CLIENT) % len(SYMBOLS)
    return {
        "type": "subscribe",
        "stream_type": "price",
        "interval_ms": INTERVAL_MS,
        "symbols": [SYMBOLS[(first + k) % len(SYMBOLS)] for k in range(PER_CLIENT)],
    }


def message_micros(text: str) -> int:
    """The ``timestamp`` of a data message: its first one, before the items."""
    start = text.index(TIMESTAMP_FIELD) + len(TIMESTAMP_FIELD)
    return datetime_to_micros(parse_iso(text[start : text.index('"', start)]))


def due_slot(origin: int, stamp: int, interval: int) -> int:
    """The cadence slot a message built at ``stamp`` was due at, the cadence starting at
    ``origin``; a message built up to a tenth of an interval early counts for that slot."""
    return origin + (stamp - origin + interval // 10) // interval * interval


@dataclass
class Window:
    """What the clients of one process saw while measuring."""

    open: bool = False
    lags_ms: list[float] = field(default_factory=list)
    messages: int = 0


@dataclass
class Tally:
    """Counts over the whole run of one client process."""

    errors: list[str] = field(default_factory=list)
    closed: int = 0
    data: int = 0
    live: int = 0


async def hold(
    url: str,
    request: dict[str, object],
    source: str,
    window: Window,
    tally: Tally,
    subscribed: asyncio.Event,
) -> None:
    """One client: subscribe, then time every data message against its cadence slot."""
    interval = int(request.get("interval_ms", INTERVAL_MS)) * 1000
    acked = False
    try:
        async with websockets.connect(
            url,
            max_size=None,
            open_timeout=120,
            ping_interval=None,
            compression=None,
            local_addr=(source, 0),
        ) as ws:
            await ws.send(orjson.dumps(request).decode())
            origin = None
            async for text in ws:
                received = now_micros()
                if text.startswith('{"type":"subscription_ack"'):
                    acked = True
                    tally.live += 1
                    subscribed.set()
                elif text.startswith('{"type":"data"'):
                    tally.data += 1
                    stamp = message_micros(text)
                    origin = stamp if origin is None else origin
                    due = due_slot(origin, stamp, interval)
                    if window.open:
                        window.messages += 1
                        window.lags_ms.append((received - due) / 1000)
                elif text.startswith('{"type":"error"'):
                    tally.errors.append(text[:200])
    except (OSError, TimeoutError, websockets.WebSocketException) as error:
        tally.errors.append(f"{type(error).__name__}: {error}"[:200])
    finally:
        subscribed.set()
        tally.closed += 1
        tally.live -= acked


async def _serve_commands(pipe: Connection, source: str) -> None:
    window, tally = Window(), Tally()
    clients: list[asyncio.Task] = []
    while True:
        command, *args = await asyncio.to_thread(pipe.recv)
        if command == "grow":
            url, requests = args
            deadline = asyncio.get_running_loop().time() + GROW_LIMIT_S
            for start in range(0, len(requests), CONNECT_CONCURRENCY):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                events = []
                for request in requests[start : start + CONNECT_CONCURRENCY]:
                    events.append(asyncio.Event())
                    clients.append(
                        asyncio.create_task(hold(url, request, source, window, tally, events[-1]))
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), left)
            pipe.send(tally.live)
        elif command == "measure":
            window.open, window.lags_ms, window.messages = True, [], 0
            await asyncio.sleep(args[0])
            window.open = False
            pipe.send((window.lags_ms, window.messages))
        elif command == "tally":
            pipe.send((tally.errors, tally.closed, tally.data))
        elif command == "close":
            for client in clients:
                client.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            clients.clear()
            tally.closed = 0
            pipe.send(True)
        elif command == "exit":
            return


def client_process(pipe: Connection, source: str) -> None:
    """A load generator: holds WebSocket clients and measures them on command."""
    raise_open_files()
    asyncio.run(_serve_commands(pipe, source))


@dataclass
class ClientPool:
    """Client processes, each on its own 127.0.0.x source address, driven by commands."""

    processes: int = CLIENT_PROCESSES
    pipes: list[Connection] = field(default_factory=list)
    workers: list[Any] = field(default_factory=list)
    requests: int = 0

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        for n in range(self.processes):
            ours, theirs = context.Pipe()
            worker = context.Process(target=client_process, args=(theirs, f"127.0.0.{10 + n}"))
            worker.start()
            self.pipes.append(ours)
            self.workers.append(worker)

    async def _ask(self, command: tuple, within: float = 900) -> list:
        for pipe in self.pipes:
            pipe.send(command)
        return [await asyncio.to_thread(_receive, pipe, within) for pipe in self.pipes]

    async def grow(
        self, url: str, total: int, request: Callable[[int], dict[str, object]] = subscribe_request
    ) -> int:
        """Open clients until ``total`` were opened (each process gives up after
        :data:`GROW_LIMIT_S`); returns how many are subscribed and open."""
        new = [request(n) for n in range(self.requests, total)]
        self.requests = max(total, self.requests)
        for pipe, share in zip(self.pipes, _deal(new, len(self.pipes)), strict=True):
            pipe.send(("grow", url, share))
        return sum(
            [await asyncio.to_thread(_receive, pipe, GROW_LIMIT_S + 120) for pipe in self.pipes]
        )

    async def measure(self, seconds: float) -> tuple[list[float], int]:
        """Lags (ms) and data messages of every client during ``seconds``."""
        answers = await self._ask(("measure", seconds), seconds + 120)
        return [lag for lags, _ in answers for lag in lags], sum(count for _, count in answers)

    async def tally(self) -> dict[str, object]:
        """Errors, closed connections and data messages over the run so far."""
        answers = await self._ask(("tally",))
        errors = [error for found, _, _ in answers for error in found]
        return {
            "errors": len(errors),
            "first_errors": errors[:5],
            "closed": sum(closed for _, closed, _ in answers),
            "data_messages": sum(data for _, _, data in answers),
        }

    async def close_all(self) -> None:
        """Close every client (the processes stay for the next server)."""
        await self._ask(("close",))
        self.requests = 0

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit",))
        for worker in self.workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()


def _receive(pipe: Connection, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError("a client process did not answer")
    return pipe.recv()


def _deal(items: list, hands: int) -> Iterator[list]:
    return (items[n::hands] for n in range(hands))


def bench_quote(symbol: str, seq: int, now_us: int) -> Quote:
    """A quote of the publisher: a new price every time."""
    price = 100.0 + seq % 1000 / 100
    return Quote(
        symbol=symbol,
        ts_event=now_us,
        ts_ingest=now_us,
        seq=seq,
        price=price,
        provider="bench:fanout",
        confidence=0.9,
        bid=price - 0.01,
        ask=price + 0.01,
        volume=1000.0 + seq,
        change=price - 100,
        change_percent=round(price - 100, 4),
        reference_price=100.0,
        providers=["bench:fanout"],
    )


async def publish_quotes(settings: Settings, stop: asyncio.Event) -> None:
    """Every :data:`QUOTE_PERIOD`, a new quote of every symbol, until ``stop``."""
    producer = make_producer(settings, "bench-fanout")
    await producer.start()
    try:
        seq = 0
        while not stop.is_set():
            now = now_micros()
            for symbol in SYMBOLS:
                seq += 1
                await producer.send(
                    settings.topic("quotes"),
                    encode(bench_quote(symbol, seq, now)),
                    key=symbol.encode(),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), QUOTE_PERIOD)
    finally:
        await producer.stop()


def broadcast_text(slot_us: int) -> str:
    """The baseline's data message: the gateway's shape, 10 price items, due at ``slot_us``."""
    items = ",".join(
        orjson.dumps(price_item(bench_quote(symbol, n, slot_us))).decode()
        for n, symbol in enumerate(SYMBOLS[:PER_CLIENT])
    )
    return (
        '{"type":"data","stream_type":"price","subscription_id":"broadcast",'
        f'"timestamp":"{micros_to_iso(slot_us)}","seq":1,"data":[{items}]}}'
    )


async def _broadcast_server(port: int) -> None:
    subscribers: set = set()

    async def handler(ws) -> None:
        await ws.recv()
        await ws.send(f'{{"type":"subscription_ack","timestamp":"{now_iso()}"}}')
        subscribers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            subscribers.discard(ws)

    async with serve(
        handler, "127.0.0.1", port, ping_interval=None, compression=None, backlog=4096
    ):
        interval = INTERVAL_MS * 1000
        while True:
            slot = (now_micros() // interval + 1) * interval
            await asyncio.sleep((slot - now_micros()) / 1e6)
            broadcast(subscribers, broadcast_text(slot))


def broadcast_server(port: int) -> None:
    """The baseline: the websockets library broadcasting pre-encoded text once a second."""
    raise_open_files()
    asyncio.run(_broadcast_server(port))


async def run_steps(
    pool: ClientPool, url: str, pid: int, steps: list[int], settle_s: float, seconds: float
) -> list[dict]:
    """Grow the clients step by step; at each, measure lag, messages/s and RSS. Stop
    after a step that went badly wrong (see :func:`hopeless`): more clients would only take
    longer to fail."""
    idle = rss_bytes(pid)
    results: list[dict] = []
    for step in steps:
        if results and hopeless(results[-1]):
            break
        started = time.monotonic()
        connected = await pool.grow(url, step)
        ramp = time.monotonic() - started
        await asyncio.sleep(settle_s)
        cpu = cpu_seconds(pid)
        lags, messages = await pool.measure(seconds)
        cpu = cpu_seconds(pid) - cpu
        rss = rss_bytes(pid)
        results.append(
            {
                "clients": step,
                "connected": connected,
                "connect_s": round(ramp, 1),
                "messages_per_s": round(messages / seconds),
                "due_per_s": connected,
                "lag_ms": percentiles(lags, (50, 99)),
                "server_cores": round(cpu / seconds, 2),
                "server_cpu_us_per_message": round(cpu * 1e6 / max(1, messages)),
                "rss_mb": round(rss / 2**20, 1),
                "rss_per_connection_kb": round((rss - idle) / max(1, connected) / 1024, 1),
            }
        )
    return results


def hopeless(step: dict) -> bool:
    """Whether a step failed by far: clients left unconnected, most messages missing, or
    a p99 lag over four times the limit."""
    p99 = step["lag_ms"]["p99"]
    return (
        step["connected"] < 0.99 * step["clients"]
        or step["messages_per_s"] < 0.5 * step["due_per_s"]
        or p99 is None
        or p99 > 4 * LAG_LIMIT_MS
    )


def served(steps: list[dict]) -> int:
    """The most clients of a step where all connected, got their messages and the p99 lag
    stayed under the limit."""
    good = [
        step["clients"]
        for step in steps
        if step["connected"] == step["clients"]
        and step["lag_ms"]["p99"] is not None
        and step["lag_ms"]["p99"] < LAG_LIMIT_MS
        and step["messages_per_s"] >= 0.95 * step["due_per_s"]
    ]
    return max(good, default=0)


async def measure(
    options: tuple[list[int], float, float], bootstrap: str, _: int, tmp: Path
) -> dict:
    steps, settle_s, seconds = options
    raise_open_files()
    settings = Settings.from_env(
        {},
        kafka_bootstrap=bootstrap,
        partitions=6,
        topic_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        gateway_port=free_port(),
        log_level="warning",
        max_connections=0,  # every client comes from this machine: no connection caps
        max_connections_per_client=0,
        symbols=SYMBOLS,  # the universe the gateway serves
    )
    await create_topics(settings)
    stop = asyncio.Event()
    publisher = asyncio.create_task(publish_quotes(settings, stop))
    pool = ClientPool()
    pool.start()
    gateway = spawn_service(settings, "gateway", tmp / "gateway.log")
    try:
        await wait_ready(settings.gateway_port)
        await asyncio.sleep(2)
        fiml = await run_steps(
            pool,
            f"ws://127.0.0.1:{settings.gateway_port}/ws/stream",
            gateway.pid,
            steps,
            settle_s,
            seconds,
        )
        fiml_tally = await pool.tally()
        await pool.close_all()
        stop_process(gateway)
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(target=broadcast_server, args=(port,))
        server.start()
        try:
            await asyncio.sleep(2)
            baseline = await run_steps(
                pool,
                f"ws://127.0.0.1:{port}/",
                server.pid,
                [step["clients"] for step in fiml],
                settle_s,
                seconds,
            )
            await pool.close_all()
        finally:
            server.kill()
            server.join()
    finally:
        stop.set()
        await publisher
        stop_process(gateway)
        pool.stop()
    log = (tmp / "gateway.log").read_text()
    for gateway_step, base_step in zip(fiml, baseline, strict=False):
        gateway_step["share_of_baseline"] = round(
            gateway_step["messages_per_s"] / max(1, base_step["messages_per_s"]), 3
        )
    top = fiml[-1]
    share = top.get("share_of_baseline")
    return {
        **run_facts(),
        "symbols_per_client": PER_CLIENT,
        "interval_ms": INTERVAL_MS,
        "measure_s": seconds,
        "steps_not_run": steps[len(fiml) :],
        "gateway": fiml,
        "baseline": baseline,
        "gateway_clients": fiml_tally,
        "gateway_log_errors": sum('"level":"ERROR"' in line for line in log.splitlines()),
        "served_under_250ms": served(fiml),
        "baseline_served_under_250ms": served(baseline),
        "targets": {
            "clients": {"target": TARGET_CLIENTS, "met": served(fiml) >= TARGET_CLIENTS},
            "share_of_baseline": {
                "target": TARGET_BASELINE_SHARE,
                "at_clients": top["clients"],
                "value": share,
                "met": share is not None and share >= TARGET_BASELINE_SHARE,
            },
            "kb_per_connection": {
                "target": TARGET_BYTES_PER_CONNECTION / 1024,
                "at_clients": top["clients"],
                "value": top["rss_per_connection_kb"],
                "met": top["rss_per_connection_kb"] * 1024 < TARGET_BYTES_PER_CONNECTION,
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clients, shorter steps")
    parser.add_argument("--steps", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, help="measured seconds per step")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    default = "200,500,1000" if args.quick else "500,1000,2000,5000,10000"
    steps = [int(step) for step in (args.steps or default).split(",")]
    seconds = args.seconds or (6.0 if args.quick else 20.0)
    settle = 3.0 if args.quick else 5.0
    run_and_report(functools.partial(measure, (steps, settle, seconds)), 0, args.out)


if __name__ == "__main__":
    main()
