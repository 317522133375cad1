"""API keys never reach a log line or a metric: the gateway runs as in production (``fiml
gateway``, JSON logs at info, uvicorn's access log on) and every way of sending a key is
used; then the log it wrote is searched for the key."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from ingest.providers.alphavantage import AlphaVantageProvider
from runtime.processes import stop_process
from runtime.redaction import RedactingFilter, redact
from runtime.settings import Settings
from runtime.testing import free_port
from tests.support import SERVICE_START_TIMEOUT, poll, service_env, spawn
from tests.support_gateway import receive

KEY = f"key-{uuid.uuid4().hex}"
WRONG = f"wrong-{uuid.uuid4().hex}"


async def ping(url: str, **options: object) -> dict:
    """Open a WebSocket, ping, and return the first non-heartbeat answer."""
    async with websockets.connect(url, **options) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(10):
            while (message := json.loads(await ws.recv()))["type"] == "heartbeat":
                pass
        return message


async def test_keys_are_in_no_log_line_and_no_metric(topics, tmp_path: Path):
    settings = dataclasses.replace(topics, gateway_port=free_port())
    env = service_env(settings, FIML_API_KEYS=KEY, FIML_LOG_LEVEL="info", FIML_LOG_FORMAT="json")
    log = tmp_path / "gateway.log"
    gateway = spawn(["gateway"], env, log)
    base = f"127.0.0.1:{settings.gateway_port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{base}") as http:
            await poll(f"http://{base}/readyz", SERVICE_START_TIMEOUT, gateway)
            key_protocol = "fiml.key." + base64.urlsafe_b64encode(KEY.encode()).decode().rstrip("=")
            assert (await ping(f"ws://{base}/ws/stream?api_key={KEY}"))["type"] == "pong"
            assert (await ping(f"ws://{base}/ws/stream", additional_headers={"X-API-Key": KEY}))[
                "type"
            ] == "pong"
            assert (await ping(f"ws://{base}/ws/stream", subprotocols=["fiml", key_protocol]))[
                "type"
            ] == "pong"
            async with websockets.connect(f"ws://{base}/ws/stream?api_key={WRONG}") as ws:
                assert (await receive(ws, "error"))["error_code"] == "UNAUTHORIZED"
            async with websockets.connect(f"ws://{base}/ws/prices/AAPL?api_key={KEY}") as ws:
                await receive(ws, "subscription_ack")
            assert (await http.get(f"/v1/providers?api_key={KEY}")).status_code == 200
            assert (await http.get(f"/v1/providers?api_key={WRONG}")).status_code == 401
            history = await http.get(
                "/v1/quotes/AAPL", params={"start": "2024-01-01T00:00:00Z", "api_key": KEY}
            )
            assert history.status_code == 200
            assert (await http.get("/ws/connections", headers={"X-API-Key": KEY})).is_success
            metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
            assert metrics.status_code == 200 and "fiml_gateway_connections" in metrics.text
            assert KEY not in metrics.text and key_protocol not in metrics.text
    finally:
        stop_process(gateway)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [line["message"] for line in lines if "api_key=" in line["message"]]
    # uvicorn logged the requests (with the parameter, masked): the search below means something
    assert any("WebSocket /ws/stream?api_key=***" in message for message in access), access
    assert any("GET /v1/providers?api_key=*** " in message for message in access), access
    for secret in (KEY, WRONG, key_protocol):
        assert secret not in text


def test_credential_parameters_are_masked_anywhere_in_a_line():
    line = "GET https://www.alphavantage.co/query?function=GLOBAL_QUOTE&symbol=IBM&apikey=s3cr3t"
    assert redact(line).endswith("symbol=IBM&apikey=***")
    assert redact('"WebSocket /ws/stream?x=1&API_KEY=a%20b" [accepted]') == (
        '"WebSocket /ws/stream?x=1&API_KEY=***" [accepted]'
    )
    assert redact("/v1/quotes/AAPL?start=2024-01-01") == "/v1/quotes/AAPL?start=2024-01-01"


def test_the_log_filter_masks_arguments_and_exception_texts():
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s", (), None)
    record.args = ("GET https://x/query?apikey=s3cr3t",)
    try:
        raise RuntimeError("Client error for url https://x/query?symbol=IBM&apikey=s3cr3t")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "HTTP Request: GET https://x/query?apikey=***"
    assert record.exc_text is not None and "s3cr3t" not in record.exc_text
    assert "apikey=***" in record.exc_text


async def test_a_provider_masks_its_key_before_cutting_the_text():
    provider = AlphaVantageProvider("alphavantage", "a-long-secret-key", ["IBM"], timeout_s=1.0)
    try:
        # the key straddles character 200, where the text is cut
        error = RuntimeError("x" * 190 + " a-long-secret-key " + "y" * 50)
        described = provider.describe(error)
        assert "a-long-secret" not in described and "***" in described
        assert len(described) == 200
    finally:
        await provider.close()


@pytest.mark.parametrize("secret", ["api_keys", "alphavantage_api_key", "fmp_api_key"])
def test_settings_that_hold_secrets_are_not_in_their_repr(secret):
    settings = Settings.from_env(
        {}, **{secret: ("hidden-1",) if secret == "api_keys" else "hidden-1"}
    )
    assert "hidden-1" not in repr(settings)
