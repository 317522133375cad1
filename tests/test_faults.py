"""Faults on the real broker: the broker killed with SIGKILL and restarted mid-stream, the
arbitration worker killed, and providers that go down, lag or send garbage."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import websockets

from arbitration.configure import engine_config
from gateway.messages import Status
from ingest.synthetic import MICROS, SyntheticMarket
from runtime.broker import LocalKafka
from runtime.processes import stop_process
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import Quote, RawTick, Rejected
from tests.support import poll_until, service_env, spawn, wait_for_port
from tests.support_engine import Harness
from tests.support_kafka import read_topic

OUTAGE_SECONDS = 8.0


@pytest.fixture
def running_broker(own_broker):
    """A broker of this test's own, running, which the test may kill and restart."""
    local = LocalKafka(own_broker)
    holder = {"process": local.start(stop_with_parent=True)}
    yield local, holder
    stop_process(holder["process"], timeout=30)


async def watch_prices(url: str, arrivals: list[float], closed: list[str]) -> None:
    """Record the arrival time of every data message until cancelled."""
    try:
        async with websockets.connect(url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "stream_type": "price",
                        "symbols": ["AAPL", "BTC/USDT"],
                        "interval_ms": 200,
                    }
                )
            )
            async for raw in ws:
                if json.loads(raw)["type"] == "data":
                    arrivals.append(time.monotonic())
    except websockets.ConnectionClosed as closing:
        closed.append(repr(closing))


@dataclasses.dataclass
class System:
    """The three services as processes, and a client's data arrivals and disconnections."""

    env: dict[str, str]
    services: dict[str, subprocess.Popen]
    arrivals: list[float] = dataclasses.field(default_factory=list)
    closed: list[str] = dataclasses.field(default_factory=list)


@contextlib.asynccontextmanager
async def streaming_system(settings, tmp_path) -> AsyncIterator[System]:
    """Run ingest, arbitration and gateway with a client already receiving prices."""
    env = service_env(settings)
    system = System(
        env,
        {
            name: spawn([name], env, tmp_path / f"{name}.log")
            for name in ("ingest", "arbitrate", "gateway")
        },
    )
    watcher = None
    try:
        wait_for_port(settings.gateway_port, timeout=60)
        watcher = asyncio.create_task(
            watch_prices(
                f"ws://127.0.0.1:{settings.gateway_port}/ws/stream", system.arrivals, system.closed
            )
        )
        await poll_until(lambda: len(system.arrivals) >= 10, within=60)
        yield system
    finally:
        if watcher is not None:
            watcher.cancel()
        for process in reversed(list(system.services.values())):
            stop_process(process, timeout=60)


async def test_a_broker_killed_and_restarted_loses_no_accepted_tick(running_broker, tmp_path):
    """Clients stay connected, data resumes within 15 s of the broker, and every tick ingest
    accepted is in the log (the idempotent producer retries until the broker is back, and
    each provider waits for its batch meanwhile)."""
    local, holder = running_broker
    settings = dataclasses.replace(
        local.settings,
        kafka_bootstrap=local.bootstrap,
        gateway_port=free_port(),
        topic_prefix=f"fault-{uuid.uuid4().hex[:8]}",
        partitions=3,
        symbols=("AAPL", "BTC/USDT"),
    )
    await create_topics(settings)
    async with streaming_system(settings, tmp_path) as system:
        os.kill(holder["process"].pid, signal.SIGKILL)
        holder["process"].wait()
        await asyncio.sleep(OUTAGE_SECONDS)
        holder["process"] = await asyncio.to_thread(local.start, stop_with_parent=True)
        back = time.monotonic()
        arrivals = system.arrivals
        await poll_until(lambda: arrivals[-1] > back + 1.0, within=30)
        assert arrivals[-1] - back < 15, "data did not resume within 15 s of the broker"
        assert not system.closed, f"the client was disconnected: {system.closed}"
        for name, process in system.services.items():
            assert process.poll() is None, f"{name} died while the broker was away"

    log = (tmp_path / "ingest.log").read_text()
    written = int(re.search(r"ingest stopped: (\d+) ticks", log).group(1))
    ticks = await read_topic(settings, "ticks.raw", RawTick)
    distinct = {(tick.provider, tick.seq) for _, _, tick in ticks}
    assert written > 0
    assert len(distinct) == written, f"{written} ticks accepted, {len(distinct)} in the log"


async def test_a_killed_arbitration_worker_resumes_without_duplicate_quotes(topics, tmp_path):
    """Clients see a pause, then data again; no quote sequence number is written twice."""
    settings = dataclasses.replace(topics, gateway_port=free_port(), symbols=("AAPL", "BTC/USDT"))
    async with streaming_system(settings, tmp_path) as system:
        services = system.services
        os.kill(services["arbitrate"].pid, signal.SIGKILL)
        services["arbitrate"].wait()
        await asyncio.sleep(3)
        services["arbitrate"] = spawn(["arbitrate"], system.env, tmp_path / "arbitrate-2.log")
        back = time.monotonic()
        await poll_until(lambda: system.arrivals[-1] > back + 1.0, within=60)
        assert not system.closed, f"the client was disconnected: {system.closed}"
    quotes = await read_topic(settings, "quotes", Quote)
    keys = [(quote.symbol, quote.seq) for _, _, quote in quotes]
    assert len(keys) > 20
    assert len(keys) == len(set(keys)), "a quote sequence number was written twice"


FAULTS = ("synthetic:alpha=down", "synthetic:beta=lag", "synthetic:gamma=outliers+duplicates")
ALPHA = "synthetic:alpha"


def healthy_confidence(settings, seconds: float = 20.0) -> float:
    """Median confidence of the quotes the engine makes from the same synthetic market with
    every venue healthy: the baseline, computed offline by the same pure engine."""
    market = SyntheticMarket(
        settings.symbols, seed=settings.synthetic_seed, tick_hz=settings.synthetic_tick_hz
    )
    harness = Harness(engine_config(settings))
    start = 1_764_000_000 * MICROS
    confidences = []
    for step in range(int(seconds * settings.synthetic_tick_hz)):
        ticks, statuses = market.advance(start + step * MICROS // 10)
        for status in statuses:
            harness.timeline.add(status)
        confidences += [out.confidence for out in harness.feed(ticks) if isinstance(out, Quote)]
    return statistics.median(confidences)


async def watch_quotes(url: str, frames: list[tuple[float, dict]]) -> None:
    """Subscribe to quotes of AAPL and BTC/USDT and keep every frame with its arrival time."""
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "quote",
                    "symbols": ["AAPL", "BTC/USDT"],
                    "interval_ms": 200,
                }
            )
        )
        async for raw in ws:
            frames.append((time.monotonic(), json.loads(raw)))


async def test_quotes_flow_from_the_healthy_providers_with_lower_confidence(topics, tmp_path):
    """alpha is down 4 s in every 12, beta's ticks come 1.5 s late, gamma sends 5% outliers
    and 5% duplicates. The client keeps getting quotes, driven by beta or gamma while alpha
    is down and with less confidence than an all-healthy market gives; it is told when alpha
    goes down and comes back; no outlier reaches it, and the garbage is in the DLQ."""
    settings = dataclasses.replace(
        topics,
        gateway_port=free_port(),
        synthetic_faults=FAULTS,
        symbols=("AAPL", "BTC/USDT"),
    )
    baseline = healthy_confidence(settings)
    frames: list[tuple[float, dict]] = []

    def notices(kind: str) -> list[tuple[float, dict]]:
        return [
            (t, f)
            for t, f in frames
            if f["type"] == "status" and f["status"] == kind and f.get("provider") == ALPHA
        ]

    def came_back() -> bool:
        down = notices("provider_down")
        return bool(down) and any(t > down[0][0] for t, _ in notices("provider_up"))

    async with streaming_system(settings, tmp_path) as system:
        client = asyncio.create_task(
            watch_quotes(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream", frames)
        )
        try:
            await poll_until(came_back, within=45)
        finally:
            client.cancel()
        assert not system.closed, system.closed
    down_at = notices("provider_down")[0][0]
    up_at = next(t for t, _ in notices("provider_up") if t > down_at)
    for _, frame in notices("provider_down") + notices("provider_up"):
        Status.model_validate(frame)
        assert frame["symbol"] in ("AAPL", "BTC/USDT")
    data = [(t, item) for t, f in frames if f["type"] == "data" for item in f["data"]]
    during = [item for t, item in data if down_at < t < up_at and ALPHA not in item["providers"]]
    assert during, "no quote arrived while alpha was down"
    assert {item["provider"] for item in during} <= {"synthetic:beta", "synthetic:gamma"}
    assert all(
        ALPHA not in item["scores"] and 0 <= min(item["scores"].values()) <= 1 for item in during
    )
    arrivals = [t for t, f in frames if f["type"] == "data" and down_at < t < up_at]
    assert (
        max(b - a for a, b in zip([down_at, *arrivals], [*arrivals, up_at], strict=True)) < 2.0
    ), "quotes paused while alpha was down"
    degraded = statistics.median(item["confidence"] for item in during)
    assert degraded < baseline, (degraded, baseline)
    for symbol in ("AAPL", "BTC/USDT"):
        prices = [item["price"] for _, item in data if item["symbol"] == symbol]
        middle = statistics.median(prices)
        assert all(abs(price / middle - 1) < 0.02 for price in prices), "an outlier got through"
    rejected = await read_topic(settings, "ticks.dlq", Rejected)
    reasons = {r.reason for _, _, r in rejected if r.provider == "synthetic:gamma"}
    assert {"outlier", "duplicate"} <= reasons, reasons
