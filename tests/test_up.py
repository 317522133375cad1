"""``fiml up`` runs the whole system and leaves no process behind, however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import websockets

from runtime.testing import free_port
from tests.support import processes_with_env, service_env, wait_for_port


@pytest.fixture
def up(own_broker, tmp_path):
    """Start ``fiml up`` with its own broker, ports and topics; yield (process, marker, port)."""
    marker_value = f"up-{uuid.uuid4().hex[:10]}"
    settings = own_broker
    port = free_port()
    env = service_env(
        settings,
        FIML_TOPIC_PREFIX=marker_value,
        FIML_GATEWAY_PORT=str(port),
        FIML_UP_INGEST_HEALTH_PORT=str(free_port()),
        FIML_UP_ARBITRATION_HEALTH_PORT=str(free_port()),
        FIML_SYMBOLS="AAPL,BTC/USDT",
    )
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fiml", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
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


async def test_ctrl_c_stops_every_process_including_kafka(up):
    process, marker, port = up
    assert len(processes_with_env(marker)) == 5  # up, kafka, ingest, arbitrate, gateway
    price = await first_price(port)
    assert price["symbol"] == "AAPL" and price["price"] > 0
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert wait_until_gone(marker, timeout=10) == []


def test_a_killed_service_brings_everything_down(up):
    process, marker, _ = up
    os.kill(service_pid(marker, "gateway"), signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert wait_until_gone(marker, timeout=10) == []


def test_killing_fiml_up_itself_stops_its_children(up):
    process, marker, _ = up
    process.kill()
    process.wait()
    assert wait_until_gone(marker, timeout=45) == []
