"""Records per second of a WebSocket replay at speed 0, beside a bare aiokafka read.

Usage: ``python benchmarks/replay_throughput.py [--quick] [--records N] [--rounds N] [--out FILE]``

Fills a trades topic (8 symbols, 6 partitions, Kafka time = ingest time, all within the
last minutes so that retention keeps them) and measures in each round, on the same broker:

- ``bare``: one aiokafka consumer reading and decoding every record of the range;
- ``replay``: ``python -m fiml gateway`` as its own process serving one WebSocket client in
  another process (the websockets library with its defaults, permessage-deflate included,
  parsing every frame's JSON) that subscribes to all symbols with ``start``, ``end`` and
  ``speed: 0``, timed from the subscribe message to ``replay_complete``, every item counted.

The result holds the median of the rounds and each round's figures, with the CPU seconds
the gateway and the client used during each replay: a client far below the gateway shows
that the client does not set the pace. Uses ``FIML_KAFKA_BOOTSTRAP`` if set, else starts a
local broker in a temporary directory. Prints the results as JSON and writes them to
``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import orjson
import websockets
from arbitration_throughput import SYMBOLS
from harness import cpu_seconds, run_and_report, run_facts, spawn_service

from runtime.clock import now_micros
from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import Trade, decode, encode
from schemas.times import micros_to_iso

STEP_US = 100
ROUNDS = 3


def trades(count: int, base: int) -> list[Trade]:
    """``count`` trades over the symbols from ``base`` (µs), one every 100 µs of event time."""
    return [
        Trade(
            symbol=SYMBOLS[n % len(SYMBOLS)],
            trade_id=f"t{n}",
            provider="bench",
            ts_event=base + n * STEP_US,
            ts_ingest=base + n * STEP_US + 1000,
            price=100.0 + n % 97,
            amount=1.0,
            side="buy",
        )
        for n in range(count)
    ]


async def fill(settings: Settings, records: list, role: str = "trades") -> None:
    """Write ``records`` to the topic of ``role``, keyed by symbol, at their ingest time."""
    producer = make_producer(settings, "bench-fill", linger_ms=20)
    await producer.start()
    try:
        topic = settings.topic(role)
        deliveries = [
            await producer.send(
                topic, encode(t), key=t.symbol.encode(), timestamp_ms=t.ts_ingest // 1000
            )
            for t in records
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def bare_read(settings: Settings, count: int) -> float:
    """Records per second of reading and decoding the topic with aiokafka alone."""
    partitions = await topic_partitions(settings, settings.topic("trades"))
    consumer = make_consumer(settings, "bench-bare", max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        start = time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    decode(record.value, Trade)
                    seen += 1
        return count / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def wait_ready(port: int) -> None:
    """Wait until the gateway on ``port`` answers /readyz with 200."""
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("the gateway did not get ready")


async def _receive_replay(url: str, subscribe: dict) -> dict:
    async with websockets.connect(url, max_size=None) as ws:
        received = 0
        start, cpu = time.perf_counter(), time.process_time()
        await ws.send(orjson.dumps(subscribe).decode())
        while True:
            message = orjson.loads(await ws.recv())
            if message["type"] == "data":
                received += len(message["data"])
            elif message["type"] == "replay_complete":
                break
            elif message["type"] == "error":
                raise RuntimeError(message["message"])
        return {
            "received": received,
            "seconds": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu,
        }


def replay_client(url: str, subscribe: dict) -> dict:
    """Run in a process of its own: subscribe, read every frame until replay_complete."""
    return asyncio.run(_receive_replay(url, subscribe))


async def replay_round(
    settings: Settings, count: int, base: int, gateway_pid: int, clients: ProcessPoolExecutor
) -> dict:
    """One replay of the range to a client process; its rate and the CPU it cost."""
    subscribe = {
        "type": "subscribe",
        "stream_type": "trades",
        "symbols": list(SYMBOLS),
        "start": micros_to_iso(base),
        "end": micros_to_iso(base + count * STEP_US),
        "speed": 0,
    }
    url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
    gateway_cpu = cpu_seconds(gateway_pid)
    client = await asyncio.get_running_loop().run_in_executor(
        clients, replay_client, url, subscribe
    )
    gateway_cpu = cpu_seconds(gateway_pid) - gateway_cpu
    if client["received"] != count:
        raise RuntimeError(f"the replay sent {client['received']} of {count} records")
    return {
        "replay_records_per_s": round(count / client["seconds"]),
        "gateway_cpu_s": round(gateway_cpu, 2),
        "client_cpu_s": round(client["cpu_s"], 2),
        "replay_s": round(client["seconds"], 2),
    }


async def measure(bootstrap: str, count: int, tmp: Path, rounds: int = ROUNDS) -> dict:
    settings = Settings.from_env(
        {},
        kafka_bootstrap=bootstrap,
        partitions=6,
        topic_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        gateway_port=free_port(),
        log_level="warning",
    )
    base = now_micros() // 1_000_000 * 1_000_000 - count * STEP_US - 60_000_000
    await create_topics(settings)
    await fill(settings, trades(count, base))
    gateway = spawn_service(settings, "gateway", tmp / "gateway.log")
    spawn = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(1, mp_context=spawn) as clients:
            await asyncio.get_running_loop().run_in_executor(clients, time.sleep, 0)
            await wait_ready(settings.gateway_port)
            results = []
            for _ in range(rounds):
                bare = await bare_read(settings, count)
                replay = await replay_round(settings, count, base, gateway.pid, clients)
                results.append(
                    {
                        "bare_records_per_s": round(bare),
                        **replay,
                        "ratio": round(replay["replay_records_per_s"] / bare, 3),
                    }
                )
    finally:
        stop_process(gateway)
    return {
        **run_facts(),
        "records": count,
        "partitions": settings.partitions,
        **{key: statistics.median(r[key] for r in results) for key in results[0]},
        "rounds": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller range")
    parser.add_argument("--records", type=int, help="records in the range")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="bare reads and replays")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    count = args.records or (100_000 if args.quick else 400_000)

    async def rounds(bootstrap: str, records: int, tmp: Path) -> dict:
        return await measure(bootstrap, records, tmp, args.rounds)

    run_and_report(rounds, count, args.out)


if __name__ == "__main__":
    main()
