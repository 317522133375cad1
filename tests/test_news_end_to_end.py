"""A story from a recorded FMP answer goes through ingest's poller and writer, the Faust
news agent and the gateway to the WebSocket client subscribed to its symbol, and to no
client of another symbol; the agent's output is the pure deduplication of the raw log,
also after a restart (its state rebuilt from the log)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json

import httpx
import pytest
import websockets

from domain.news.dedup import NewsDeduplicator
from ingest.news.keyed_pollers import FmpNewsPoller
from ingest.news.planner import Budget
from ingest.writer import TickWriter
from runtime.clock import now_micros
from runtime.processes import stop_process
from runtime.testing import free_port
from schemas.news import NewsItem
from schemas.times import micros_to_iso
from tests.support import poll_until, service_env, spawn, wait_for_port
from tests.support_gateway import receive
from tests.support_kafka import read_topic
from tests.support_news import recorded

WITHIN_S = 120.0


@pytest.fixture
def news_system(topics, tmp_path):
    """The news agent (in the arbitration worker) and a gateway on the test's topics; yields
    the settings and a function that restarts the worker."""
    settings = dataclasses.replace(topics, gateway_port=free_port(), heartbeat_interval=1.0)
    env = service_env(settings)
    processes = {
        name: spawn([name], env, tmp_path / f"{name}.log") for name in ("arbitrate", "gateway")
    }

    def restart_worker() -> None:
        stop_process(processes["arbitrate"])
        processes["arbitrate"] = spawn(["arbitrate"], env, tmp_path / "arbitrate.log")

    try:
        wait_for_port(settings.gateway_port, timeout=60)
        yield settings, restart_worker
    finally:
        for process in processes.values():
            stop_process(process)
        for name in processes:
            log = (tmp_path / f"{name}.log").read_text(errors="replace")
            assert "Traceback" not in log, f"{name} logged an exception:\n{log[-3000:]}"


async def ingest(settings, poller_or_items) -> None:
    """Write what the FMP poller reads from the recorded answer (or the given items) to
    Kafka with ingest's writer."""
    writer = TickWriter(settings)
    stop = asyncio.Event()
    delivery = asyncio.create_task(writer.run(stop))
    try:
        if isinstance(poller_or_items, FmpNewsPoller):
            poller = asyncio.create_task(poller_or_items.run(writer.write, stop))
            await poll_until(lambda: writer.counters.news >= 1, within=30, interval=0.05)
            stop.set()
            await poller
        else:
            await writer.write(poller_or_items)
            await poll_until(
                lambda: not writer.buffer and writer.counters.news >= len(poller_or_items),
                within=30,
                interval=0.05,
            )
    finally:
        stop.set()
        await delivery


async def subscribed(port: int, symbol: str):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/stream")
    await ws.send(json.dumps({"type": "subscribe", "stream_type": "news", "symbols": [symbol]}))
    await receive(ws, "subscription_ack", within=30)
    return ws


async def next_news(ws) -> dict:
    message = await receive(ws, "data", within=WITHIN_S)
    assert message["stream_type"] == "news"
    (entry,) = message["data"]
    return entry


async def replay_news(port: int, symbol: str, start: str, end: str) -> list[dict]:
    """Every item a news replay of ``symbol`` sends until ``replay_complete``."""
    entries = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        request = {"stream_type": "news", "symbols": [symbol], "start": start, "end": end}
        await ws.send(json.dumps({"type": "subscribe", **request, "speed": 0}))
        await receive(ws, "subscription_ack", within=30)
        async with asyncio.timeout(30):
            while (message := json.loads(await ws.recv()))["type"] != "replay_complete":
                if message["type"] == "data":
                    assert message["replay"] is True
                    entries.extend(message["data"])
    return entries


async def outputs_are_the_fold_of_the_raw_log(settings) -> list[NewsItem]:
    raw = await read_topic(settings, "news.raw", NewsItem)
    news = await read_topic(settings, "news", NewsItem)
    dedup = NewsDeduplicator()
    expected = []
    for _, _, item in sorted(raw, key=lambda found: found[:2]):
        (symbol,) = item.symbols  # written once, under its one symbol
        expected.append(dedup.add(symbol, item))
    written = [item for _, _, item in sorted(news, key=lambda found: found[:2])]
    assert written == [item for item in expected if item is not None]
    return written


async def test_a_story_reaches_the_clients_of_its_symbol_only(news_system):
    settings, restart_worker = news_system
    port = settings.gateway_port
    aapl, msft = await subscribed(port, "AAPL"), await subscribed(port, "MSFT")
    try:
        answer = recorded("fmp_stable_news_stock_AAPL_MSFT.json")
        poller = FmpNewsPoller(
            "NEWSKEY123",
            ["AAPL", "MSFT"],
            timeout_s=5,
            budget=Budget(interval_s=0.05, max_batch=5),
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)),
        )
        await ingest(settings, poller)
        entry = await next_news(aapl)
        assert (entry["symbol"], entry["symbols"], entry["providers"]) == (
            "AAPL",
            ["AAPL"],
            ["fmp"],
        )
        assert entry["publisher"] == "Reuters" and entry["timestamp"].endswith("Z")
        (story,) = await outputs_are_the_fold_of_the_raw_log(settings)
        assert entry["id"] == story.id and entry["headline"] == story.headline

        # The same story from another provider, after a restart: the worker rebuilds its
        # state from the log, so it is an update of the same story with both providers.
        restart_worker()
        copy = dataclasses.replace(
            story,
            url=story.url + "?utm_source=yahoo",
            headline=story.headline + " - Reuters",
            providers=["yfinance"],
        )
        await ingest(settings, [copy])
        update = await next_news(aapl)
        assert (update["id"], update["providers"]) == (story.id, ["fmp", "yfinance"])
        written = await outputs_are_the_fold_of_the_raw_log(settings)
        assert [item.providers for item in written] == [["fmp"], ["fmp", "yfinance"]]

        with contextlib.suppress(TimeoutError):  # heartbeats only: no story about MSFT
            await receive(msft, "data", within=3)
            pytest.fail("a client of MSFT got news about AAPL")

        # A replay reads every state written, unconflated, under the symbol asked for.
        replayed = await replay_news(
            port, "AAPL", "2025-01-01T00:00:00Z", micros_to_iso(now_micros())
        )
        assert [(e["symbol"], e["id"], e["providers"]) for e in replayed] == [
            ("AAPL", story.id, ["fmp"]),
            ("AAPL", story.id, ["fmp", "yfinance"]),
        ]
    finally:
        await aapl.close()
        await msft.close()
