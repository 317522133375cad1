"""Records per second of a WebSocket replay at speed 0, beside a bare aiokafka read.

Usage: ``python benchmarks/replay_throughput.py [--quick] [--records N] [--out FILE]``

Fills a trades topic (8 symbols, 6 partitions, Kafka time = ingest time) and measures in
the same run, on the same broker:

- ``bare``: one aiokafka consumer reading and decoding every record of the range;
- ``replay``: ``python -m fiml gateway`` as its own process serving one WebSocket client
  that subscribes to all symbols with ``start``, ``end`` and ``speed: 0``, timed from the
  subscribe message to ``replay_complete``; items counted as the client parses them.

Uses ``FIML_KAFKA_BOOTSTRAP`` if set, else starts a local broker in a temporary directory.
Prints the results as JSON and writes them to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import websockets
from arbitration_throughput import SYMBOLS
from harness import ROOT, run_and_report

from fiml.kafka_clients import make_consumer, make_producer, topic_partitions
from fiml.local_kafka import free_port
from fiml.processes import stop_process
from fiml.settings import Settings
from fiml.topics import create_topics
from schemas import Trade, decode, encode
from schemas.records import micros_to_iso

BASE_US = 1_763_807_400_000_000


def trades(count: int) -> list[Trade]:
    """``count`` trades over the symbols, one every 100 µs of event time."""
    return [Trade(symbol=SYMBOLS[n % len(SYMBOLS)], trade_id=f"t{n}", provider="bench",
                  ts_event=BASE_US + n * 100, ts_ingest=BASE_US + n * 100 + 1000,
                  price=100.0 + n % 97, amount=1.0, side="buy") for n in range(count)]


async def fill(settings: Settings, records: list[Trade]) -> None:
    producer = make_producer(settings, "bench-fill", linger_ms=20)
    await producer.start()
    try:
        topic = settings.topic("trades")
        deliveries = [await producer.send(topic, encode(t), key=t.symbol.encode(),
                                          timestamp_ms=t.ts_ingest // 1000) for t in records]
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


def start_gateway(settings: Settings, log: Path) -> subprocess.Popen:
    """``python -m fiml gateway`` on these settings, logging to ``log``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    env.update(settings.to_env())
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "fiml", "gateway"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


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


async def replay_rate(settings: Settings, count: int, log: Path) -> float:
    """Records per second a WebSocket client gets from a gateway replay at speed 0."""
    process = start_gateway(settings, log)
    try:
        await wait_ready(settings.gateway_port)
        url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
        async with websockets.connect(url, max_size=None) as ws:
            received = 0
            start = time.perf_counter()
            await ws.send(json.dumps({
                "type": "subscribe", "stream_type": "trades", "symbols": list(SYMBOLS),
                "start": micros_to_iso(BASE_US),
                "end": micros_to_iso(BASE_US + count * 100), "speed": 0}))
            while True:
                message = orjson.loads(await ws.recv())
                if message["type"] == "data":
                    received += len(message["data"])
                elif message["type"] == "replay_complete":
                    break
                elif message["type"] == "error":
                    raise RuntimeError(message["message"])
            elapsed = time.perf_counter() - start
        if received != count:
            raise RuntimeError(f"the replay sent {received} of {count} records")
        return count / elapsed
    finally:
        stop_process(process)


async def measure(bootstrap: str, count: int, tmp: Path) -> dict:
    settings = Settings.from_env({}, kafka_bootstrap=bootstrap, partitions=6,
                                 topic_prefix=f"bench-{uuid.uuid4().hex[:8]}",
                                 gateway_port=free_port(), log_level="warning")
    await create_topics(settings)
    await fill(settings, trades(count))
    bare = await bare_read(settings, count)
    replay = await replay_rate(settings, count, tmp / "gateway.log")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python "
                   f"{platform.python_version()}",
        "records": count,
        "partitions": settings.partitions,
        "bare_records_per_s": round(bare),
        "replay_records_per_s": round(replay),
        "ratio": round(replay / bare, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller range")
    parser.add_argument("--records", type=int, help="records in the range")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    count = args.records or (100_000 if args.quick else 400_000)
    run_and_report(measure, count, args.out)


if __name__ == "__main__":
    main()
