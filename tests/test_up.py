"""``fiml up`` runs the whole system and leaves no process behind, however it ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import websockets

from runtime.processes import command_line
from runtime.settings import Settings
from runtime.testing import free_port
from tests.support import poll, processes_with_env, service_env, wait_for_port


@contextlib.contextmanager
def running_up(settings, tmp_path, *options: str, **env: str):
    """``fiml up *options`` with its own broker, ports and topics; yields (process, marker,
    port)."""
    marker_value = f"up-{uuid.uuid4().hex[:10]}"
    port = free_port()
    defaults = {
        "FIML_UP_INGEST_HEALTH_PORT": str(free_port()),
        "FIML_UP_ARBITRATION_HEALTH_PORT": str(free_port()),
        "FIML_UP_WEBHOOKS_HEALTH_PORT": str(free_port()),
        "FIML_UP_ALERTS_HEALTH_PORT": str(free_port()),
    }
    env = service_env(
        settings,
        FIML_TOPIC_PREFIX=marker_value,
        FIML_GATEWAY_PORT=str(port),
        FIML_SYMBOLS="AAPL,BTC/USDT",
        **{**defaults, **env},
    )
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fiml", "up", *options],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a process group of its own, as in a terminal
    )
    marker = f"FIML_TOPIC_PREFIX={marker_value}"
    try:
        wait_for_port(port, timeout=90)
        yield process, marker, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pid in processes_with_env(marker):
            os.kill(pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def up(own_broker, tmp_path):
    """``fiml up`` with its own broker, ports and topics; yields (process, marker, port)."""
    with running_up(own_broker, tmp_path) as running:
        yield running


def wait_until_gone(marker: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_with_env(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def service_pid(marker: str, name: str) -> int:
    for pid in processes_with_env(marker):
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if cmdline.read().rstrip(b"\0").split(b"\0")[-2:] == [b"fiml", name.encode()]:
                return pid
    raise AssertionError(f"no {name} process found")


async def first_price(port: int) -> dict:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
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
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "data":
                return message["data"][0]


async def test_ctrl_c_stops_every_process_including_kafka(up, tmp_path):
    process, marker, port = up
    # up, kafka, ingest, arbitrate, alerts evaluate, gateway
    assert len(processes_with_env(marker)) == 6
    price = await first_price(port)
    assert price["symbol"] == "AAPL" and price["price"] > 0
    log = tmp_path / "up.log"
    stopped_at = log.stat().st_size
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
    assert process.wait(timeout=60) == 0
    assert wait_until_gone(marker, timeout=10) == []
    # the broker stopped after the services, so none of them lost it while stopping
    assert b"Connection refused" not in log.read_bytes()[stopped_at:]


def test_a_killed_service_brings_everything_down(up):
    process, marker, _ = up
    os.kill(service_pid(marker, "gateway"), signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert wait_until_gone(marker, timeout=10) == []


def test_killing_fiml_up_itself_stops_its_children(up):
    process, marker, _ = up
    process.kill()
    process.wait()
    left = wait_until_gone(marker, timeout=45)
    assert left == [], [command_line(pid) for pid in left]


@pytest.mark.registry
async def test_up_with_the_registry_runs_on_its_ids_and_stops_it_too(own_broker, tmp_path):
    registry_port = free_port()
    env = {
        "FIML_REGISTRY_PORT": str(registry_port),
        "FIML_REGISTRY_DATA_DIR": str(tmp_path / "registry"),
        "FIML_CACHE_DIR": Settings.from_env().cache_dir,  # where the registry was built
    }
    with running_up(own_broker, tmp_path, "--registry", **env) as (process, marker, port):
        assert len(processes_with_env(marker)) == 7  # and the registry
        price = await first_price(port)  # ingest, arbitration and gateway on its ids
        assert price["symbol"] == "AAPL" and price["price"] > 0
        url = f"http://127.0.0.1:{registry_port}/apis/ccompat/v7"
        async with httpx.AsyncClient() as client:
            subjects = (await client.get(f"{url}/subjects")).json()
        prefix = marker.removeprefix("FIML_TOPIC_PREFIX=")
        assert f"{prefix}.quotes-value" in subjects and f"{prefix}.ticks.raw-value" in subjects
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert wait_until_gone(marker, timeout=10) == []


async def test_up_runs_the_webhook_worker_when_a_signing_secret_is_set(own_broker, tmp_path):
    health = free_port()
    env = {
        "FIML_ALERT_WEBHOOK_SECRET": "up-test-secret",
        "FIML_UP_WEBHOOKS_HEALTH_PORT": str(health),
    }
    with running_up(own_broker, tmp_path, **env) as (process, marker, _):
        assert len(processes_with_env(marker)) == 7  # and `fiml alerts webhooks`
        base = f"http://127.0.0.1:{health}"
        await poll(f"{base}/readyz", within=60)  # joined its consumer group
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/healthz")).json() == {"status": "ok"}
            metrics = (await client.get(f"{base}/metrics")).text
        assert "fiml_webhook_deliveries_total" in metrics
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert wait_until_gone(marker, timeout=10) == []
    log = (tmp_path / "up.log").read_text(errors="replace")
    assert f"http://127.0.0.1:{health}/metrics" in log and "Traceback" not in log
