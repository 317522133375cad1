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
import pytest
import websockets

from arbitration.configure import engine_config
from arbitration.engine.partition import PartitionEngine
from arbitration.engine.statuses import ProviderHealth, StatusTimeline
from arbitration.monitor import applied_states
from gateway.app import create_app
from runtime.clock import now_micros
from runtime.metrics import ConsumerLag, ScoreExport, exposition
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from schemas import ProviderStatus
from tests.factories import quote
from tests.support import SERVICE_START_TIMEOUT, Samples, parse, poll, scrape, service_env, spawn
from tests.support_gateway import serve_gateway
from tests.support_kafka import produce


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the exposition does not have it."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of a metric's samples over all label values."""
    return sum(v for (sample_name, _), v in samples.items() if sample_name == name)


async def scrape_until(
    client: httpx.AsyncClient, url: str, done: Callable[[Samples], bool], within: float = 60.0
) -> Samples:
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
        async with websockets.connect(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream") as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "stream_type": "price",
                        "symbols": ["AAPL"],
                        "interval_ms": 100,
                    }
                )
            )
            assert json.loads(await ws.recv())["type"] == "subscription_ack"
            during = await scrape(http, metrics)
            assert value(during, "fiml_gateway_connections") == 1
            assert value(during, "fiml_gateway_subscriptions") == 1
            await produce(
                settings,
                "quotes",
                [dataclasses.replace(quote("AAPL", 101.0, 1), ts_ingest=now_micros())],
            )
            async with asyncio.timeout(30):
                while json.loads(await ws.recv())["type"] != "data":
                    pass
            after = await scrape_until(
                http,
                metrics,
                lambda s: (
                    value(s, "fiml_end_to_end_latency_seconds_count")
                    > value(before, "fiml_end_to_end_latency_seconds_count")
                ),
            )
        frames = value(after, "fiml_gateway_frames_sent_total") - value(
            before, "fiml_gateway_frames_sent_total"
        )
        assert frames >= 2  # the ack and the data message
        observed = value(after, "fiml_end_to_end_latency_seconds_count") - value(
            before, "fiml_end_to_end_latency_seconds_count"
        )
        waited = value(after, "fiml_end_to_end_latency_seconds_sum") - value(
            before, "fiml_end_to_end_latency_seconds_sum"
        )
        assert observed == 1 and 0 < waited < 10
        assert value(after, "fiml_gateway_send_queue_depth_count") > value(
            before, "fiml_gateway_send_queue_depth_count"
        )
        gone = await scrape_until(
            http, metrics, lambda s: value(s, "fiml_gateway_connections") == 0
        )
        assert value(gone, "fiml_gateway_subscriptions") == 0


@pytest.mark.parametrize(
    ("path", "content"), [("/metrics", "fiml_gateway_connections"), ("/v1/providers", "[]")]
)
async def test_gateway_metrics_and_statuses_need_an_api_key_when_keys_are_set(path, content):
    # In-process, without the app's lifespan: no broker is needed.
    app = create_app(Settings.from_env({}, kafka_bootstrap="127.0.0.1:9", api_keys=("secret-key",)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert (await client.get(path)).status_code == 401
        allowed = await client.get(path, headers={"x-api-key": "secret-key"})
        assert allowed.status_code == 200 and content in allowed.text


def json_lines(log: Path) -> list[dict]:
    """Every line of a service's log as JSON; fails on a line that is not."""
    return [
        json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.strip()
    ]


async def test_ingest_and_arbitration_export_counters_and_log_json(topics, tmp_path: Path):
    settings = dataclasses.replace(topics, symbols=("AAPL", "BTC/USDT"))
    ports = {"ingest": free_port(), "arbitrate": free_port()}
    logs = {command: tmp_path / f"{command}.log" for command in ports}
    processes = {
        command: spawn([command], service_env(settings, FIML_HEALTH_PORT=str(port)), logs[command])
        for command, port in ports.items()
    }
    try:
        for command, port in ports.items():
            await poll(f"http://127.0.0.1:{port}/readyz", SERVICE_START_TIMEOUT, processes[command])
        await produce(settings, "ticks.raw", [b"not an avro record"], key=b"AAPL")
        async with httpx.AsyncClient() as http:
            ingest = await scrape_until(
                http,
                f"http://127.0.0.1:{ports['ingest']}/metrics",
                lambda s: (
                    total(s, "fiml_ticks_in_total") > 0 and total(s, "fiml_provider_status") > 0
                ),
            )
            arbitration = await scrape_until(
                http,
                f"http://127.0.0.1:{ports['arbitrate']}/metrics",
                lambda s: (
                    value(s, "fiml_ticks_rejected_total", reason="undecodable") >= 1
                    and value(s, "fiml_arbitration_outputs_total", kind="quotes") > 0
                ),
            )
    finally:
        codes = {
            command: await asyncio.to_thread(stop_process, process, 30)
            for command, process in processes.items()
        }
    providers = {
        dict(labels)["provider"] for (name, labels) in ingest if name == "fiml_ticks_in_total"
    }
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


def own_samples() -> Samples:
    """The metrics of this test process."""
    return parse(exposition().decode())


def test_consumer_lag_series_follow_the_partitions_held():
    lag = ConsumerLag()
    lag.export({("t.lag", 0): 5, ("t.lag", 1): -1})
    first = own_samples()
    assert value(first, "fiml_consumer_lag", topic="t.lag", partition="0") == 5
    assert ("fiml_consumer_lag", frozenset({("topic", "t.lag"), ("partition", "1")})) in first
    assert value(first, "fiml_consumer_lag", topic="t.lag", partition="1") == 0, "never < 0"
    lag.export({("t.lag", 1): 7})
    then = own_samples()
    assert value(then, "fiml_consumer_lag", topic="t.lag", partition="1") == 7
    assert ("fiml_consumer_lag", frozenset({("topic", "t.lag"), ("partition", "0")})) not in then, (
        "a partition no longer held loses its series"
    )


def test_score_series_are_bounded_by_symbols_and_follow_the_last_quote():
    scores = ScoreExport(max_symbols=2)
    scores.export(
        [
            quote("S1", 1.0, 1, scores={"p": 0.9, "q": 0.5}),
            quote("S2", 1.0, 2, scores={"p": 0.8}),
            quote("S3", 1.0, 3, scores={"p": 0.7}),
        ]
    )
    scores.export([quote("S1", 1.0, 4, scores={"p": 0.6})])
    samples = own_samples()
    exported = {
        (dict(labels)["symbol"], dict(labels)["provider"]): sample
        for (name, labels), sample in samples.items()
        if name == "fiml_provider_score" and dict(labels)["symbol"].startswith("S")
    }
    assert exported == {("S1", "p"): 0.6, ("S2", "p"): 0.8}, (
        "S3 is beyond the bound; q is no longer in S1's last quote"
    )


def test_arbitration_reports_the_status_of_the_engine_furthest_in_event_time():
    config = engine_config(Settings.from_env({}))
    early, late = (PartitionEngine(config, "raw", p, StatusTimeline()) for p in (0, 1))
    early.watermark, late.watermark = 100, 200
    for engine, statuses in ((early, {"a": "DOWN", "b": "UP"}), (late, {"a": "UP"})):
        for provider, state in statuses.items():
            engine.health[provider] = ProviderHealth()
            engine.health[provider].apply(ProviderStatus(provider, 0, state))
    assert applied_states([early, late]) == {"a": "UP", "b": "UP"}
    assert applied_states([early]) == {"a": "DOWN", "b": "UP"}


def series(samples: Samples, name: str) -> dict[frozenset, float]:
    """The samples of one metric by their labels."""
    return {
        labels: sample for (sample_name, labels), sample in samples.items() if sample_name == name
    }


def states_by_provider(samples: Samples) -> dict[str, dict[str, float]]:
    """``fiml_provider_status`` as provider -> state -> 0 or 1."""
    found: dict[str, dict[str, float]] = {}
    for labels, sample in series(samples, "fiml_provider_status").items():
        found.setdefault(dict(labels)["provider"], {})[dict(labels)["state"]] = sample
    return found


def lagging_partitions(samples: Samples, topic: str) -> dict[str, float]:
    """``fiml_consumer_lag`` of one topic as partition -> lag."""
    return {
        dict(labels)["partition"]: sample
        for labels, sample in series(samples, "fiml_consumer_lag").items()
        if dict(labels)["topic"] == topic
    }


async def test_fiml_up_serves_lag_scores_and_statuses_on_every_service(topics, tmp_path: Path):
    """Under ``fiml up`` (on the session's broker) every service answers /metrics without a
    health setting of its own: ingest, arbitration and the alerts worker on the
    ``FIML_UP_*_HEALTH_PORT``s."""
    settings = dataclasses.replace(topics, symbols=("AAPL", "BTC/USDT"), gateway_port=free_port())
    ports = {
        "gateway": settings.gateway_port,
        "ingest": free_port(),
        "arbitration": free_port(),
        "alerts": free_port(),
    }
    env = service_env(
        settings,
        FIML_UP_INGEST_HEALTH_PORT=str(ports["ingest"]),
        FIML_UP_ARBITRATION_HEALTH_PORT=str(ports["arbitration"]),
        FIML_UP_ALERTS_HEALTH_PORT=str(ports["alerts"]),
    )
    process = spawn(["up"], env, tmp_path / "up.log")
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}
    venues = {"synthetic:alpha", "synthetic:beta", "synthetic:gamma"}
    reporting = venues | {"synthetic-news"}  # the news poller reports a status of its own
    raw = settings.topic("ticks.raw")
    followed = [settings.topic(role) for role in ("quotes", "candles", "trades", "provider.status")]
    try:
        for port in ports.values():
            await poll(f"http://127.0.0.1:{port}/readyz", SERVICE_START_TIMEOUT, process)
        async with httpx.AsyncClient() as http:
            arbitration = await scrape_until(
                http,
                urls["arbitration"],
                lambda s: (
                    len(lagging_partitions(s, raw)) == settings.partitions
                    and {dict(labels)["symbol"] for labels in series(s, "fiml_provider_score")}
                    == {"AAPL", "BTC/USDT"}
                    and set(states_by_provider(s)) == reporting
                ),
            )
            ingest = await scrape_until(
                http, urls["ingest"], lambda s: set(states_by_provider(s)) == reporting
            )
            gateway = await scrape_until(
                http,
                urls["gateway"],
                lambda s: all(
                    len(lagging_partitions(s, topic)) == settings.partitions for topic in followed
                ),
            )
    finally:
        code = await asyncio.to_thread(stop_process, process, 60)
    assert code == 0, (tmp_path / "up.log").read_text(errors="replace")[-3000:]
    for samples in (arbitration, gateway):
        assert all(lag >= 0 for lag in series(samples, "fiml_consumer_lag").values())
    scores = series(arbitration, "fiml_provider_score")
    assert {dict(labels)["provider"] for labels in scores} <= venues
    assert all(0 < score <= 1 for score in scores.values())
    for samples in (arbitration, ingest):
        for provider, states in states_by_provider(samples).items():
            assert set(states) == {"UP", "DEGRADED", "DOWN"}, provider
            assert sorted(states.values()) == [0, 0, 1], (provider, states)
    assert total(gateway, "fiml_consumer_lag") >= 0
