"""The gateway's side of order books through Kafka: ``books.consolidated`` to WebSocket clients.

Part of ``make bench-books`` (``books_throughput.py`` calls :func:`measure_gateway`). The
consolidated books of the synthetic venues (the agent's rule run here on the same events)
are written to ``books.consolidated`` while the server is stopped (SIGSTOP) with ``CLIENTS``
WebSocket clients subscribed to the three pairs; it is then resumed and timed until every
client holds the last book of every pair (the drain: Kafka consume, decode, serve):

- ``gateway``: ``python -m fiml gateway``, each client an ``orderbook`` subscription (depth
  50, consolidated, ``interval_ms`` 100, the least), so it gets a conflated delta per pair
  per 100 ms, each against the book it was last sent;
- ``bare``: a process with an aiokafka consumer of the same topic and the ``websockets``
  library's ``broadcast``, sending every record decoded and encoded to JSON (its depth-50
  levels and venues, no seq, checksum or conflation) to every client.

Reported for each: books/s drained (books written over the drain's seconds), updates/s
delivered to all clients (book items received; the gateway's are conflated, at most
``CLIENTS`` x 3 pairs x 1000 / ``INTERVAL_MS`` a second), bytes per update (the JSON text of
the data messages, uncompressed, over their items) and the server's CPU µs per book; with
the ratio of the gateway's drain rate to the bare one's, and the load average around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import websockets
from harness import cpu_seconds, spawn_service
from replay_throughput import wait_ready
from websockets.asyncio.server import broadcast, serve

from domain.books.slots import BookSlots
from runtime.book_replay import book_slots
from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import decode, encode
from schemas.books import BookEvent, ConsolidatedBook
from schemas.times import micros_to_iso

CLIENTS = 10
DEPTH = 50
INTERVAL_MS = 100
DRAIN_TIMEOUT_S = 120


def consolidated_books(settings: Settings, events: list[BookEvent]) -> list[ConsolidatedBook]:
    """The books the agent's rule makes of ``events`` (one partition per symbol here)."""
    slots: dict[str, BookSlots] = {}
    books = []
    for offset, event in enumerate(events):
        rule = slots.get(event.symbol) or slots.setdefault(event.symbol, book_slots(settings))
        books += rule.process(offset, event.ts_ingest, event)
    return books


async def write_books(settings: Settings, books: list[ConsolidatedBook]) -> None:
    producer = make_producer(settings, "bench-books-gateway", linger_ms=20)
    await producer.start()
    try:
        topic = settings.topic("books.consolidated")
        deliveries = [
            await producer.send(topic, encode(book), key=book.symbol.encode()) for book in books
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


class Client:
    """One WebSocket client: counts book items and the bytes of their data messages."""

    def __init__(self, url: str, request: dict[str, Any] | None) -> None:
        self.url, self.request = url, request
        self.items = self.bytes = 0
        self.last: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def run(self, ready: asyncio.Event) -> None:
        async with websockets.connect(self.url, max_size=None, compression=None) as ws:
            await ws.send(orjson.dumps(self.request or {"type": "subscribe"}).decode())
            ready.set()
            async for text in ws:
                message = orjson.loads(text)
                if message.get("type") != "data":
                    continue
                self.items += len(message["data"])
                self.bytes += len(text)
                for item in message["data"]:
                    self.last[item["symbol"]] = item["timestamp"]
                self.changed.set()


async def serve_and_drain(
    settings: Settings,
    server: subprocess.Popen | multiprocessing.process.BaseProcess,
    url: str,
    request: dict[str, Any] | None,
    books: list[ConsolidatedBook],
) -> dict[str, float]:
    """Subscribe the clients, write the first book of each pair, stop the server, write the
    rest, resume it and time the drain."""
    symbols = {book.symbol for book in books}
    first = next(i for i in range(len(books)) if {b.symbol for b in books[: i + 1]} == symbols)
    warm, measured = books[: first + 1], books[first + 1 :]
    clients = [Client(url, request) for _ in range(CLIENTS)]
    tasks = []
    for client in clients:
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(client.run(ready)))
        await ready.wait()
    try:
        await write_books(settings, warm)
        await until(clients, lambda c: len(c.last) == len(symbols), 60)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        await write_books(settings, measured)
        for client in clients:
            client.items = client.bytes = 0
        final = {b.symbol: micros_to_iso(b.ts_event) for b in measured}
        cpu = cpu_seconds(server.pid)
        start = time.perf_counter()
        os.kill(server.pid, signal.SIGCONT)
        await until(clients, lambda c: c.last == final, DRAIN_TIMEOUT_S)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server.pid) - cpu
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    items = sum(c.items for c in clients)
    return {
        "books": len(measured),
        "books_per_s": len(measured) / elapsed,
        "updates_per_s": items / elapsed,
        "bytes_per_update": sum(c.bytes for c in clients) / items,
        "cpu_us_per_book": cpu / len(measured) * 1e6,
    }


async def until(clients: list[Client], done: Callable[[Client], bool], within: float) -> None:
    async with asyncio.timeout(within):
        for client in clients:
            while not done(client):
                client.changed.clear()
                await client.changed.wait()


async def _bare_server(settings: Settings, port: int) -> None:
    subscribers: set = set()

    async def handler(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()  # its subscribe
            subscribers.add(ws)
            await ws.wait_closed()
        subscribers.discard(ws)

    consumer = make_consumer(settings, "bench-bare-books", max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    consumer.assign(await topic_partitions(settings, settings.topic("books.consolidated")))
    await consumer.seek_to_end()
    async with serve(handler, "127.0.0.1", port, ping_interval=None, compression=None):
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    book = decode(record.value, ConsolidatedBook)
                    item = {
                        "symbol": book.symbol,
                        "timestamp": micros_to_iso(book.ts_event),
                        "venues": book.venues,
                        "bids": book.bids,
                        "asks": book.asks,
                    }
                    broadcast(subscribers, orjson.dumps({"type": "data", "data": [item]}).decode())


def bare_server(settings: Settings, port: int) -> None:
    asyncio.run(_bare_server(settings, port))


async def measure_gateway(settings: Settings, events: list[BookEvent], tmp: Path) -> dict:
    """Both servers drain the books of ``events``, one after the other, on topics of their
    own (the agent's books already in ``settings``' would outrank these)."""
    settings = dataclasses.replace(settings, topic_prefix=f"{settings.topic_prefix}-gateway")
    await create_topics(settings)
    books = consolidated_books(settings, events)
    load_before = os.getloadavg()[0]
    port = free_port()
    gateway_settings = dataclasses.replace(
        settings,
        gateway_port=port,
        symbols=tuple(sorted({b.symbol for b in books})),
        max_connections_per_client=0,  # every client comes from this machine
    )
    request = {
        "type": "subscribe",
        "stream_type": "orderbook",
        "symbols": sorted({b.symbol for b in books}),
        "depth": DEPTH,
        "interval_ms": INTERVAL_MS,
    }
    gateway = spawn_service(gateway_settings, "gateway", tmp / "gateway.log")
    try:
        await wait_ready(port)
        fiml = await serve_and_drain(
            settings, gateway, f"ws://127.0.0.1:{port}/ws/stream", request, books
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(gateway.pid, signal.SIGCONT)
        stop_process(gateway)
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=bare_server, args=(settings, port), daemon=True
    )
    server.start()
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                async with websockets.connect(f"ws://127.0.0.1:{port}"):
                    break
            await asyncio.sleep(0.1)
        bare = await serve_and_drain(settings, server, f"ws://127.0.0.1:{port}", None, books)
    finally:
        assert server.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.join(10)
    return {
        "load_average_1m_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "gateway_clients": CLIENTS,
        "gateway_depth": DEPTH,
        "gateway_books_drained": fiml["books"],
        "gateway_books_per_s": round(fiml["books_per_s"]),
        "bare_books_per_s": round(bare["books_per_s"]),
        "ratio_gateway_to_bare_books": round(fiml["books_per_s"] / bare["books_per_s"], 3),
        "gateway_updates_per_s": round(fiml["updates_per_s"]),
        "bare_updates_per_s": round(bare["updates_per_s"]),
        "gateway_bytes_per_update": round(fiml["bytes_per_update"]),
        "bare_bytes_per_update": round(bare["bytes_per_update"]),
        "gateway_cpu_us_per_book": round(fiml["cpu_us_per_book"], 1),
        "bare_cpu_us_per_book": round(bare["cpu_us_per_book"], 1),
    }
