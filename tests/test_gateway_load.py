"""One gateway process serves 1,000 concurrent connections, each with a subscription."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import websockets

from runtime.processes import stop_process
from runtime.testing import free_port
from tests.factories import quote
from tests.support import service_env, spawn, wait_for_port
from tests.support_kafka import produce

CONNECTIONS = 1000
SYMBOLS = ["AAPL", "MSFT", "TSLA", "NVDA", "BTC/USDT"]


async def client(url: str, symbol: str, all_open: asyncio.Event) -> str:
    """Subscribe, wait for the ack and a data message, then hold until all are connected."""
    async with websockets.connect(url, open_timeout=60) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": [symbol],
                    "interval_ms": 1000,
                }
            )
        )
        kinds = []
        while "data" not in kinds:
            message = json.loads(await ws.recv())
            kinds.append(message["type"])
            if message["type"] == "data":
                assert message["data"][0]["symbol"] == symbol
        assert kinds[0] == "subscription_ack"
        await all_open.wait()
        return symbol


async def test_a_thousand_connections(topics, tmp_path):
    settings = dataclasses.replace(topics, gateway_port=free_port())
    await produce(settings, "quotes", (quote(s, 100.0 + n, n) for n, s in enumerate(SYMBOLS)))
    gateway = spawn(
        ["gateway"],
        # all from 127.0.0.1: the per-client cap (100 by default) is off here
        service_env(settings, FIML_LOG_LEVEL="warning", FIML_MAX_CONNECTIONS_PER_CLIENT="0"),
        tmp_path / "gateway.log",
    )
    try:
        wait_for_port(settings.gateway_port, timeout=60)
        url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
        all_open = asyncio.Event()
        tasks = [
            asyncio.create_task(client(url, SYMBOLS[n % len(SYMBOLS)], all_open))
            for n in range(CONNECTIONS)
        ]
        async with httpx.AsyncClient() as http:
            async with asyncio.timeout(120):
                while True:
                    summary = (
                        await http.get(f"http://127.0.0.1:{settings.gateway_port}/ws/connections")
                    ).json()
                    failed = [t for t in tasks if t.done() and t.exception()]
                    assert not failed, failed[0].exception()
                    if summary["total_subscriptions"] == CONNECTIONS:
                        break
                    await asyncio.sleep(0.5)
        assert summary == {
            "active_connections": CONNECTIONS,
            "total_subscriptions": CONNECTIONS,
            "subscribed_symbols": sorted(SYMBOLS),
        }
        all_open.set()
        served = await asyncio.wait_for(asyncio.gather(*tasks), 120)
        assert len(served) == CONNECTIONS
        assert gateway.poll() is None
    finally:
        stop_process(gateway)
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()
