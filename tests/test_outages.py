"""Ingest, and the readiness of every service, while the broker is missing or goes away.

A broker of the test's own, not running yet. Two ingest services start without it, one with
a roomy buffer and one whose buffer holds 50 records: both keep running, alive but not
ready, and say the broker is the problem. The broker starts; both deliver; arbitration and a
gateway join. Then the broker is killed for 20 s and restarted: every service says it is not
ready meanwhile and ready again after. In the end the roomy ingest has lost no tick its
providers reported, and the tight one has written or counted as dropped every record its
providers reported (and said so in its log); no provider status blames a provider for Kafka.
Without a broker at all: what fits in the buffer is taken, the rest counted per provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import time
import uuid

import httpx

from ingest.writer import TickWriter
from runtime.broker import LocalKafka
from runtime.metrics import INGEST_DROPPED
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import ProviderStatus, RawTick
from tests.support import SERVICE_START_TIMEOUT, poll, service_env, spawn
from tests.support_kafka import read_topic

OUTAGE_SECONDS = 20.0
STOPPED = re.compile(
    r"ingest stopped: (\d+) ticks, (\d+) news records, (\d+) book events, (\d+) statuses written, "
    r"(\d+) dropped, of (\d+) records reported"
)


async def answer(url: str) -> tuple[int | None, dict]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        try:
            response = await client.get(url)
        except httpx.TransportError:
            return None, {}
        return response.status_code, response.json()


async def until_ready(urls: dict[str, str], within: float) -> None:
    deadline = time.monotonic() + within
    for name, url in urls.items():
        while (await answer(url))[0] != 200:
            assert time.monotonic() < deadline, f"{name} not ready again within {within} s"
            await asyncio.sleep(0.5)


async def test_ingest_rides_out_a_missing_then_vanishing_broker(own_broker, tmp_path):
    local = LocalKafka(own_broker)
    base = dataclasses.replace(
        local.settings,
        kafka_bootstrap=local.bootstrap,
        partitions=3,
        symbols=("AAPL", "BTC/USDT"),
        gateway_port=free_port(),
    )
    run = uuid.uuid4().hex[:8]
    roomy = dataclasses.replace(base, topic_prefix=f"roomy-{run}")
    tight = dataclasses.replace(base, topic_prefix=f"tight-{run}", ingest_buffer_records=50)
    ports = {name: free_port() for name in ("roomy", "tight", "arbitrate")}
    processes = {
        name: spawn(
            ["ingest"],
            service_env(settings, FIML_HEALTH_PORT=str(ports[name])),
            tmp_path / f"ingest-{name}.log",
        )
        for name, settings in (("roomy", roomy), ("tight", tight))
    }
    ready = {name: f"http://127.0.0.1:{ports[name]}/readyz" for name in ("roomy", "tight")}
    broker = None
    try:
        # alive (healthz) without a broker, for a few seconds of retrying, yet not ready
        await until_ready(
            {name: f"http://127.0.0.1:{ports[name]}/healthz" for name in ("roomy", "tight")},
            within=30,
        )
        await asyncio.sleep(3)
        for name in ("roomy", "tight"):
            assert processes[name].poll() is None, f"ingest {name} exited without a broker"
            assert (await answer(f"http://127.0.0.1:{ports[name]}/healthz"))[0] == 200
            code, body = await answer(ready[name])
            assert code == 503 and body["reason"].startswith("broker unavailable"), body

        broker = await asyncio.to_thread(local.start, stop_with_parent=True)
        for settings in (roomy, tight):
            await create_topics(settings)
        await until_ready(ready, within=60)
        processes["arbitrate"] = spawn(
            ["arbitrate"],
            service_env(roomy, FIML_HEALTH_PORT=str(ports["arbitrate"])),
            tmp_path / "arbitrate.log",
        )
        processes["gateway"] = spawn(["gateway"], service_env(roomy), tmp_path / "gateway.log")
        ready["arbitrate"] = f"http://127.0.0.1:{ports['arbitrate']}/readyz"
        ready["gateway"] = f"http://127.0.0.1:{roomy.gateway_port}/readyz"
        for name in ("arbitrate", "gateway"):
            await poll(ready[name], SERVICE_START_TIMEOUT, processes[name])
        await asyncio.sleep(3)

        os.kill(broker.pid, signal.SIGKILL)
        broker.wait()
        away = time.monotonic()
        refused = set()
        while time.monotonic() - away < OUTAGE_SECONDS:
            for name, url in ready.items():
                code, body = await answer(url)
                if code == 503:
                    refused.add(name)
            await asyncio.sleep(0.5)
        broker = await asyncio.to_thread(local.start, stop_with_parent=True)
        assert refused == set(ready), f"still ready without a broker: {set(ready) - refused}"
        await until_ready(ready, within=90)
        for name, process in processes.items():
            assert process.poll() is None, f"{name} died while the broker was away"
        await asyncio.sleep(3)
    finally:
        for process in processes.values():
            stop_process(process, timeout=60)
    try:
        for name, settings in (("roomy", roomy), ("tight", tight)):
            log = (tmp_path / f"ingest-{name}.log").read_text()
            assert "Kafka unavailable" in log
            counts = map(int, STOPPED.search(log).groups())
            ticks, news, books, statuses, dropped, reported = counts
            assert reported == ticks + news + books + statuses + dropped, log[-2000:]
            found = await read_topic(settings, "ticks.raw", RawTick)
            assert len({(t.provider, t.seq) for _, _, t in found}) == ticks > 0
            if name == "roomy":
                assert dropped == 0, "the roomy buffer dropped records"
            else:
                assert dropped > 0 and "buffer_full" in log, "the tight buffer never filled"
            for _, _, status in await read_topic(settings, "provider.status", ProviderStatus):
                assert "Kafka" not in f"{status.error_kind} {status.message}", status
    finally:
        if broker is not None:
            stop_process(broker, timeout=30)


async def test_a_full_buffer_takes_what_fits_and_counts_the_rest_per_provider():
    writer = TickWriter(Settings(ingest_buffer_records=3))
    ticks = [RawTick("AAPL", "test:full", "QUOTE", 1, 2, seq, 100.0) for seq in range(5)]
    before = INGEST_DROPPED.labels("test:full", "buffer_full")._value.get()
    await writer.write(ticks)
    assert list(writer.buffer) == ticks[:3]
    writer.buffer.extendleft([ticks[4]])  # records back from a failed round may overfill it
    await writer.write(ticks[:2])
    assert len(writer.buffer) == 4
    assert (writer.counters.reported, writer.counters.dropped) == (7, 4)
    assert INGEST_DROPPED.labels("test:full", "buffer_full")._value.get() == before + 4
