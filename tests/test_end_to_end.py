"""A price goes from the synthetic provider through Kafka and Faust to a WebSocket client.

The three services run as their own processes (``python -m fiml ...``) on the session's
real broker; the test reads fiml.ticks.raw and fiml.quotes to check what the client got.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets

from runtime.processes import stop_process
from runtime.testing import free_port
from schemas import Quote, RawTick
from schemas.times import micros_to_iso
from tests.support import service_env, spawn, wait_for_port
from tests.support_kafka import read_topic

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def system(topics, tmp_path):
    """Ingest, arbitration and gateway running on the test's own topics."""
    settings = dataclasses.replace(
        topics, gateway_port=free_port(), symbols=("AAPL", "TSLA", "NVDA", "BTC/USDT")
    )
    env = service_env(settings)
    processes = [
        spawn([name], env, tmp_path / f"{name}.log") for name in ("ingest", "arbitrate", "gateway")
    ]
    try:
        wait_for_port(settings.gateway_port, timeout=60)
        yield settings
    finally:
        for process in reversed(processes):
            stop_process(process)
        for name in ("ingest", "arbitrate", "gateway"):
            log = (tmp_path / f"{name}.log").read_text(errors="replace")
            assert "Traceback" not in log, f"{name} logged an exception:\n{log[-3000:]}"


async def collect_prices(port: int, symbols: list[str], within: float) -> list[dict]:
    """Data items for ``symbols`` until every symbol was seen at least twice."""
    items: list[dict] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": symbols,
                    "interval_ms": 200,
                }
            )
        )
        async with asyncio.timeout(within):
            while any(sum(i["symbol"] == s for i in items) < 2 for s in symbols):
                message = json.loads(await ws.recv())
                if message["type"] == "data":
                    items.extend(message["data"])
    return items


async def test_prices_reach_a_client_and_trace_back_to_raw_ticks(system):
    settings = system
    items = await collect_prices(settings.gateway_port, ["AAPL", "BTC/USDT"], within=90)

    quotes = await read_topic(settings, "quotes", Quote)
    raw = await read_topic(settings, "ticks.raw", RawTick)
    quotes_by_key: dict[tuple, list[Quote]] = {}
    for _, _, q in quotes:
        key = (q.symbol, micros_to_iso(q.ts_event), q.price, q.provider)
        quotes_by_key.setdefault(key, []).append(q)
    raw_by_offset = {(tick.symbol, offset): tick for _, offset, tick in raw}
    raw_offsets: dict[tuple, int] = {}
    for _, offset, t in raw:
        raw_offsets.setdefault((t.symbol, t.provider, t.ts_event, t.price), offset)

    for item in items:
        key = (item["symbol"], item["timestamp"], item["price"], item["provider"])
        assert key in quotes_by_key, f"{item} is not in fiml.quotes"
        # The same driving tick can appear in several quotes whose confidence differs
        # (other providers moved); the client got one of them.
        same = [q for q in quotes_by_key[key] if q.confidence == item["confidence"]]
        assert same, f"{item} has a confidence no quote of its tick has"
        quote = same[0]
        trigger = raw_by_offset[(quote.symbol, quote.seq)]
        driver = (quote.symbol, quote.provider, quote.ts_event, quote.price)
        assert driver in raw_offsets, f"no raw tick drives {quote}"
        assert raw_offsets[driver] <= quote.seq
        assert trigger.kind == "QUOTE" and trigger.provider in quote.providers


def test_the_spec_demo_client_prints_prices(system):
    """examples/websocket_demo.py, as the spec writes it, prints price lines."""
    settings = system
    demo = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "websocket_demo.py"),
            f"ws://127.0.0.1:{settings.gateway_port}/ws/stream",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline and not any(": $" in line for line in lines[1:]):
            lines.append(demo.stdout.readline())
        assert lines[0].startswith("Subscribed: ")
        symbol, _, price = next(line for line in lines[1:] if ": $" in line).partition(": $")
        assert symbol in {"AAPL", "TSLA", "NVDA"} and float(price) > 0
    finally:
        stop_process(demo)
