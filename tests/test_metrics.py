"""GET /metrics of every service and the JSON log lines.

The gateway runs on a real uvicorn and the real broker; ingest and arbitration are spawned
with a health port, as in production, and scraped over HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from fiml.kafka_clients import make_producer
from fiml.processes import stop_process
from fiml.runtime import now_micros
from gateway.app import create_app
from tests.kafka_broker import free_port
from tests.support import service_env, spawn
from tests.test_gateway import make_quote, publish, serve_gateway
from tests.test_health import SERVICE_START_TIMEOUT, poll

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the exposition does not have it."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of a metric's samples over all label values."""
    return sum(v for (sample_name, _), v in samples.items() if sample_name == name)


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def scrape_until(client: httpx.AsyncClient, url: str, done: Callable[[Samples], bool],
                       within: float = 60.0) -> Samples:
    """Scrape ``url`` until ``done`` holds for its samples."""
    deadline = time.monotonic() + within
    while True:
        samples = await scrape(client, url)
        if done(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never got there: {sorted(samples)[:40]}")
        await asyncio.sleep(0.2)


async def test_gateway_metrics_follow_connections_frames_and_latency(topics):
    settings = dataclasses.replace(topics, gateway_port=free_port())
    metrics = f"http://127.0.0.1:{settings.gateway_port}/metrics"
    async with serve_gateway(settings), httpx.AsyncClient() as http:
        before = await scrape(http, metrics)
        assert value(before, "fiml_gateway_connections") == 0
        async with websockets.connect(
                f"ws://127.0.0.1:{settings.gateway_port}/ws/stream") as ws:
            await ws.send(json.dumps({"type": "subscribe", "stream_type": "price",
                                      "symbols": ["AAPL"], "interval_ms": 100}))
            assert json.loads(await ws.recv())["type"] == "subscription_ack"
            during = await scrape(http, metrics)
            assert value(during, "fiml_gateway_connections") == 1
            assert value(during, "fiml_gateway_subscriptions") == 1
            await publish(settings, dataclasses.replace(make_quote("AAPL", 101.0, 1),
                                                        ts_ingest=now_micros()))
            async with asyncio.timeout(30):
                while json.loads(await ws.recv())["type"] != "data":
                    pass
            after = await scrape_until(
                http, metrics,
                lambda s: value(s, "fiml_end_to_end_latency_seconds_count")
                > value(before, "fiml_end_to_end_latency_seconds_count"))
        frames = (value(after, "fiml_gateway_frames_sent_total")
                  - value(before, "fiml_gateway_frames_sent_total"))
        assert frames >= 2  # the ack and the data message
        observed = (value(after, "fiml_end_to_end_latency_seconds_count")
                    - value(before, "fiml_end_to_end_latency_seconds_count"))
        waited = (value(after, "fiml_end_to_end_latency_seconds_sum")
                  - value(before, "fiml_end_to_end_latency_seconds_sum"))
        assert observed == 1 and 0 < waited < 10
        assert (value(after, "fiml_gateway_send_queue_depth_count")
                > value(before, "fiml_gateway_send_queue_depth_count"))
        gone = await scrape_until(http, metrics,
                                  lambda s: value(s, "fiml_gateway_connections") == 0)
        assert value(gone, "fiml_gateway_subscriptions") == 0


async def test_gateway_metrics_need_an_api_key_when_keys_are_set(settings):
    app = create_app(dataclasses.replace(settings, api_keys=("secret-key",)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert (await client.get("/metrics")).status_code == 401
        allowed = await client.get("/metrics", headers={"x-api-key": "secret-key"})
        assert allowed.status_code == 200 and "fiml_gateway_connections" in allowed.text


async def produce_raw(settings, key: bytes, value_bytes: bytes) -> None:
    producer = make_producer(settings, "test-bad-raw")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic("ticks.raw"), value_bytes, key=key)
    finally:
        await producer.stop()


def json_lines(log: Path) -> list[dict]:
    """Every line of a service's log as JSON; fails on a line that is not."""
    return [json.loads(line) for line in log.read_text(errors="replace").splitlines()
            if line.strip()]


async def test_ingest_and_arbitration_export_counters_and_log_json(topics, tmp_path: Path):
    settings = dataclasses.replace(topics, synthetic_symbols=("AAPL", "BTC/USDT"))
    ports = {"ingest": free_port(), "arbitrate": free_port()}
    logs = {command: tmp_path / f"{command}.log" for command in ports}
    processes = {command: spawn([command], service_env(settings, FIML_HEALTH_PORT=str(port)),
                                logs[command])
                 for command, port in ports.items()}
    try:
        for command, port in ports.items():
            await poll(f"http://127.0.0.1:{port}/readyz", SERVICE_START_TIMEOUT,
                       processes[command])
        await produce_raw(settings, b"AAPL", b"not an avro record")
        async with httpx.AsyncClient() as http:
            ingest = await scrape_until(
                http, f"http://127.0.0.1:{ports['ingest']}/metrics",
                lambda s: total(s, "fiml_ticks_in_total") > 0
                and total(s, "fiml_provider_status") > 0)
            arbitration = await scrape_until(
                http, f"http://127.0.0.1:{ports['arbitrate']}/metrics",
                lambda s: value(s, "fiml_ticks_rejected_total", reason="undecodable") >= 1
                and value(s, "fiml_arbitration_outputs_total", kind="quotes") > 0)
    finally:
        codes = {command: await asyncio.to_thread(stop_process, process, 30)
                 for command, process in processes.items()}
    providers = {dict(labels)["provider"] for (name, labels) in ingest
                 if name == "fiml_ticks_in_total"}
    assert providers and all(provider.startswith("synthetic") for provider in providers)
    assert value(arbitration, "fiml_arbitration_outputs_total", kind="ticks.dlq") >= 1
    assert codes == {"ingest": 0, "arbitrate": 0}, codes
    for command, log in logs.items():
        lines = json_lines(log)
        components = {line["component"] for line in lines}
        assert {"fiml.health"} <= components, (command, components)
        assert all({"time", "level", "message"} <= line.keys() for line in lines)
    assert "fiml.ingest" in {line["component"] for line in json_lines(logs["ingest"])}
    assert "fiml.arbitration" in {line["component"] for line in json_lines(logs["arbitrate"])}
