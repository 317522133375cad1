"""The whole system on a broker that only speaks SASL_SSL: ``fiml up`` starts the local
broker with a SCRAM-SHA-512 listener over TLS (a CA and a broker certificate made for the
test, the user created when the storage is formatted), and ingest, arbitration and the
gateway connect with the FIML_KAFKA_* settings. Clients with a wrong password or without the
broker's CA are refused at once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import Iterator

import certifi
import pytest
import websockets
from aiokafka.errors import KafkaConnectionError

from runtime.broker import LocalKafka
from runtime.kafka import make_producer
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port, isolated_broker_settings
from schemas import Quote
from tests.support import service_env, spawn, wait_for_port
from tests.support_kafka import read_topic

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def secure_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """``fiml up`` with its own SASL_SSL broker; yields the settings of a client of it."""
    tmp = tmp_path_factory.mktemp("sasl-ssl")
    settings = dataclasses.replace(
        isolated_broker_settings(tmp / "broker"),
        gateway_port=free_port(),
        symbols=("AAPL", "BTC/USDT"),
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="fiml-test",
        kafka_sasl_password=secrets.token_urlsafe(16),
    )
    env = service_env(
        settings,
        FIML_UP_INGEST_HEALTH_PORT="0",
        FIML_UP_ARBITRATION_HEALTH_PORT="0",
        FIML_UP_WEBHOOKS_HEALTH_PORT="0",
        FIML_UP_ALERTS_HEALTH_PORT="0",
    )
    log = tmp / "up.log"
    process = spawn(["up"], env, log)
    try:
        wait_for_port(settings.gateway_port, timeout=180)
        yield LocalKafka(settings).client_settings()
    finally:
        stop_process(process, timeout=60)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


async def test_a_quote_goes_through_the_sasl_ssl_broker_to_a_websocket_client(secure_up):
    settings = secure_up
    assert settings.kafka_ssl_cafile is not None
    async with websockets.connect(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream") as ws:
        await ws.send(
            json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["AAPL"]})
        )
        # Status frames (stale while arbitration starts) first. Without the broker's
        # jdk.tls.acknowledgeCloseNotify (runtime/broker.py) this took over 60 s: each close
        # of a TLS connection waited 30 s for the broker's close_notify.
        async with asyncio.timeout(60):
            while (message := json.loads(await ws.recv()))["type"] != "data":
                assert message["type"] in ("subscription_ack", "status", "heartbeat"), message
    assert message["data"][0]["symbol"] == "AAPL"
    quotes = await read_topic(settings, "quotes", Quote)
    assert any(quote.symbol == "AAPL" for _, _, quote in quotes)


async def refused(settings: Settings) -> str:
    """The error a producer with ``settings`` gets when it starts; fails if it connects."""
    producer = make_producer(settings, "fiml-tests")
    try:
        async with asyncio.timeout(30):  # refused, not left hanging
            await producer.start()
    except KafkaConnectionError as error:
        return str(error)
    finally:
        await producer.stop()
    raise AssertionError("the broker let the client in")


async def test_a_client_with_a_wrong_password_is_refused(secure_up):
    wrong = dataclasses.replace(secure_up, kafka_sasl_password="not-the-password")
    assert "Unable to bootstrap" in await refused(wrong)
    broker = LocalKafka(secure_up)
    assert "invalid credentials" in broker.log_file.read_text(errors="replace")
    assert broker.config_file.stat().st_mode & 0o077 == 0  # it holds the SASL password


async def test_a_client_that_does_not_trust_the_broker_ca_is_refused(secure_up):
    public_cas_only = dataclasses.replace(secure_up, kafka_ssl_cafile=certifi.where())
    assert "Unable to bootstrap" in await refused(public_cas_only)
