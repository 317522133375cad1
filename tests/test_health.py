"""/healthz and /readyz of every service, and the graceful stop the deployments rely on.

The health server itself and the Faust readiness rule are tested in-process; ingest,
arbitration and the alerts worker are then spawned as ``python -m fiml ...`` with
``FIML_HEALTH_PORT`` set and polled over HTTP, and the gateway runs on a real uvicorn, all on
the session's real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import faust
import httpx
import pytest
import websockets

from arbitration.health import FaustHealth, faust_health
from fiml.health import main, probe
from runtime.health import HealthServer, Progress, serve_health
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.settings_checks import SettingsError
from runtime.testing import free_port
from runtime.topics import create_topics
from tests.factories import quote
from tests.support import poll, service_env, spawn
from tests.support_gateway import serve_gateway, until_known
from tests.support_kafka import produce


class Flag:
    """A readiness check the test flips."""

    def __init__(self) -> None:
        self.value = False

    def __call__(self) -> bool:
        return self.value


async def raw_request(port: int, request: bytes) -> bytes:
    """Send ``request`` as is and return the whole response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response


@pytest.fixture
async def health_server():
    """A HealthServer on a free port whose readiness the test controls."""
    ready = Flag()
    server = HealthServer("127.0.0.1", 0, ready)
    await server.start()
    yield server, ready
    await server.close()


async def test_healthz_answers_while_readyz_waits_for_the_check(health_server):
    server, ready = health_server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        live = await client.get("/healthz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        not_ready = await client.get("/readyz")
        assert (not_ready.status_code, not_ready.json()) == (503, {"status": "not ready"})
        ready.value = True
        now_ready = await client.get("/readyz?verbose=1")
        assert (now_ready.status_code, now_ready.json()) == (200, {"status": "ready"})
        assert now_ready.headers["content-type"] == "application/json"
        assert (await client.get("/nothing")).status_code == 404
        assert (await client.post("/readyz")).status_code == 405
        head = await client.head("/healthz")
        assert head.status_code == 200 and head.content == b""


async def test_a_malformed_request_gets_400_and_a_silent_client_is_dropped(
    health_server, monkeypatch
):
    server, _ = health_server
    monkeypatch.setattr("runtime.health.READ_TIMEOUT", 0.2)
    response = await raw_request(server.port, b"nonsense\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    overlong = b""
    with contextlib.suppress(ConnectionResetError):  # unread bytes may reset the connection
        overlong = await raw_request(server.port, b"GET /" + b"x" * 100_000 + b"\r\n\r\n")
    assert overlong == b""
    assert (await raw_request(server.port, b"GET /healthz HTTP/1.1\r\n\r\n")).startswith(
        b"HTTP/1.1 200 OK\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # closed after the read timeout, no answer
    writer.close()
    await writer.wait_closed()


async def test_close_stops_listening(health_server):
    server, _ = health_server
    port = server.port
    await server.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_probe_and_the_module_command(health_server):
    server, ready = health_server
    base = f"http://127.0.0.1:{server.port}"
    assert await asyncio.to_thread(probe, f"{base}/healthz")
    assert not await asyncio.to_thread(probe, f"{base}/readyz")
    assert not await asyncio.to_thread(probe, f"http://127.0.0.1:{free_port()}/healthz")
    assert main([]) == 2
    ready.value = True
    command = [sys.executable, "-m", "fiml.health", f"{base}/readyz"]
    assert (await asyncio.to_thread(subprocess.run, command)).returncode == 0
    ready.value = False
    assert (await asyncio.to_thread(subprocess.run, command)).returncode == 1


def test_health_settings_are_off_by_default_and_checked():
    settings = Settings.from_env({})
    assert (settings.health_host, settings.health_port) == ("127.0.0.1", 0)
    assert Settings.from_env({"FIML_HEALTH_PORT": "8081"}).health_port == 8081
    with pytest.raises(SettingsError, match="FIML_HEALTH_PORT"):
        Settings.from_env({"FIML_HEALTH_PORT": "70000"})
    secret = Settings.from_env({"FIML_FMP_API_KEY": "placeholder-value"})
    assert secret.fmp_api_key == "placeholder-value" and "placeholder-value" not in repr(secret)


async def test_serve_health_is_a_no_op_while_off():
    async with serve_health(Settings.from_env({}), lambda: True) as server:
        assert server is None
    assert faust_health(faust.App("health-off"), Settings.from_env({}), Progress(1.0)) == []


async def test_a_faust_worker_is_ready_once_assigned_and_not_while_rebalancing(monkeypatch):
    """...and while connected to a broker (the real check is exercised with a broker that
    goes away in tests/test_outages.py)."""
    port = free_port()
    connected = Flag()
    monkeypatch.setattr("arbitration.health.faust_connected", lambda app: connected())
    app = faust.App("health-test", broker="kafka://127.0.0.1:1")
    [service] = faust_health(app, Settings.from_env({}, health_port=port), Progress(1.0))
    assert isinstance(service, FaustHealth)
    assert not service.ready()
    await app.on_partitions_assigned.send(set())
    assert not service.ready()
    connected.value = True
    assert service.ready()
    app.rebalancing = True
    assert not service.ready()
    app.rebalancing = False
    await service.on_start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await service.on_stop()


@pytest.mark.parametrize("command", ["ingest", "arbitrate", "alerts evaluate"])
async def test_a_spawned_service_answers_health_and_stops_cleanly(command, topics, tmp_path):
    port = free_port()
    env = service_env(
        dataclasses.replace(topics, symbols=("AAPL", "BTC/USDT")),
        FIML_HEALTH_PORT=str(port),
    )
    log = tmp_path / f"{command.replace(' ', '-')}.log"
    process = spawn(command.split(), env, log)
    try:
        assert (await poll(f"http://127.0.0.1:{port}/healthz", process=process))[-1] == 200
        statuses = await poll(f"http://127.0.0.1:{port}/readyz", process=process)
        assert set(statuses) <= {200, 503}
    finally:
        code = await asyncio.to_thread(stop_process, process, 30)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert code == 0, text[-3000:]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


@pytest.fixture
async def gateway_without_topics(settings):
    """A gateway on a real uvicorn whose topics do not exist yet; yields (settings, url)."""
    settings = dataclasses.replace(settings, gateway_port=free_port())
    async with serve_gateway(settings, wait_ready=False):
        yield settings, f"http://127.0.0.1:{settings.gateway_port}"


async def test_the_gateway_is_ready_once_its_feed_has_the_partitions(gateway_without_topics):
    settings, url = gateway_without_topics
    async with httpx.AsyncClient(base_url=url) as client:
        live = await client.get("/healthz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        waiting = await client.get("/readyz")
        assert (waiting.status_code, waiting.json()) == (503, {"status": "not ready"})
    await create_topics(settings)
    assert (await poll(f"{url}/readyz", within=30))[-1] == 200


async def test_sigterm_closes_websockets_with_1012_so_clients_move(topics, tmp_path: Path):
    """What the gateway does after the pod's preStop delay: clients get 1012 and reconnect."""
    settings = dataclasses.replace(topics, gateway_port=free_port())
    process = spawn(["gateway"], service_env(settings), tmp_path / "gateway.log")
    try:
        await poll(f"http://127.0.0.1:{settings.gateway_port}/readyz", process=process)
        url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
        async with websockets.connect(url) as ws:
            await ws.send('{"type": "subscribe", "stream_type": "price", "symbols": ["AAPL"]}')
            await ws.recv()
            process.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(15):
                    while True:
                        await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        # uvicorn re-raises the signal once its graceful shutdown is done
        assert await asyncio.to_thread(process.wait, 30) in (0, -signal.SIGTERM)
    finally:
        stop_process(process)
    text = (tmp_path / "gateway.log").read_text(errors="replace")
    assert "Traceback" not in text and "Finished server process" in text, text[-3000:]


async def test_a_stuck_feed_turns_healthz_failing_within_the_stall_time_and_back(topics):
    """The gateway's reading loop hangs on an await while quotes keep arriving: /healthz
    answers 503 once FIML_CONSUMER_STALL_SECONDS passed, and 200 again once it reads on."""
    stall = 2.0
    settings = dataclasses.replace(topics, gateway_port=free_port(), consumer_stall_seconds=stall)
    async with serve_gateway(settings) as app:
        feed = app.state.feed
        entered, release = asyncio.Event(), asyncio.Event()
        getmany = feed.consumer.getmany

        async def stuck(*args, **kwargs):
            entered.set()
            await release.wait()
            return await getmany(*args, **kwargs)

        feed.consumer.getmany = stuck
        url = f"http://127.0.0.1:{settings.gateway_port}/healthz"
        async with httpx.AsyncClient() as client:
            await asyncio.wait_for(entered.wait(), 5)
            await produce(settings, "quotes", [quote("AAPL", 101.0, 1)])
            began = time.monotonic()
            assert (await client.get(url)).status_code == 200
            while (answer := await client.get(url)).status_code == 200:
                assert time.monotonic() - began < stall + 5, "/healthz never failed"
                await asyncio.sleep(0.1)
            assert answer.json() == {"status": "stalled"}
            assert time.monotonic() - began > stall
            assert app.state.market.quotes.latest("AAPL") is None
            release.set()
            await poll(url, within=10)
            await until_known(app, quote("AAPL", 101.0, 1))
