"""Consumers outside this repository read what the services write, through a schema registry.

Ingest and arbitration run as processes on the session broker with
``FIML_SCHEMA_REGISTRY_URL``, as ``fiml up --registry`` runs them: they register their
subjects and write the ids the registry returns, which here differ from the codec's fixed
ones (the registry holds other schemas first). The registry is all that a foreign consumer
needs: confluent-kafka's ``Consumer`` with its ``AvroDeserializer``, and the Go example
(examples/go-consumer: franz-go, its ``sr`` package and hamba/avro, built here from the Go
module proxy) read every record field for field as our codec does. Records written with the
fixed ids and a seeded registry are read by confluent-kafka in tests/test_schema_registry.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from runtime.processes import stop_process
from runtime.registry_client import SchemaRegistry
from runtime.schema_ids import use_registry
from runtime.settings import Settings
from schemas import codec
from schemas.records import Candle, Quote
from tests.support import poll_until, service_env, spawn
from tests.support_kafka import read_topic
from tests.support_registry import registry_cache_dir, same, temporary_registry

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "go-consumer"
ROLES = {"quotes": Quote, "candles": Candle}
OTHERS = 20  # schemas the registry holds before ours: its ids for ours exceed the fixed ones
Key = tuple[str, int, int]


def build_go_consumer(target: Path) -> Path:
    """``go build`` of the example, with the Go caches under the FIML cache directory."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed, so examples/go-consumer cannot be built")
    cache = registry_cache_dir() / "go"
    env = {
        **os.environ,
        "GOPATH": str(cache),
        "GOMODCACHE": str(cache / "pkg" / "mod"),
        "GOCACHE": str(cache / "build"),
        "GOFLAGS": "-modcacherw",
    }
    built = subprocess.run(
        [go, "build", "-o", str(target), "."],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return target


def read_with_confluent(settings: Settings, registry_url: str, count: int) -> dict[Key, dict]:
    """``count`` records of the quotes and candles topics, as confluent-kafka decodes them."""
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"fiml-tests-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topic(role) for role in ROLES])
    found: dict[Key, dict] = {}
    deadline = time.monotonic() + 60
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            context = SerializationContext(message.topic(), MessageField.VALUE)
            key = (message.topic(), message.partition(), message.offset())
            found[key] = deserializer(message.value(), context)
    finally:
        consumer.close()
    return found


def read_with_go(
    binary: Path, settings: Settings, registry_url: str, counts: Counter[str]
) -> dict[Key, dict]:
    """The records of each topic as the Go example prints them."""
    found: dict[Key, dict] = {}
    for topic, count in counts.items():
        run = subprocess.run(
            [
                str(binary),
                "-registry",
                registry_url,
                "-brokers",
                str(settings.kafka_bootstrap),
                "-topic",
                topic,
                "-max",
                str(count),
                "-timeout",
                "60s",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        for line in run.stdout.splitlines():
            item = json.loads(line)
            found[(item["topic"], item["partition"], item["offset"])] = item["value"]
    return found


@pytest.mark.timeout(900)
async def test_confluent_and_go_consumers_read_the_services_topics(topics, tmp_path, codec_ids):
    with temporary_registry(tmp_path / "registry") as registry:
        settings = dataclasses.replace(
            topics, symbols=("AAPL", "BTC/USDT"), schema_registry_url=registry.ccompat_url
        )
        with SchemaRegistry(registry.ccompat_url) as client:
            for n in range(OTHERS):
                other = {"type": "record", "name": f"Other{n}", "fields": []}
                client.register("others-value", json.dumps(other))
        use_registry(settings)  # this process reads with the registry's ids too
        ids = {t: codec.SCHEMAS_BY_TYPE[t].schema_id for t in ROLES.values()}
        # the codec knows no fixed id of these types now: every record read below carries
        # the registry's id
        assert min(ids.values()) > OTHERS
        assert {codec.SCHEMA_IDS[t][0] for t in ROLES.values()}.isdisjoint(codec.SCHEMAS_BY_ID)
        binary = build_go_consumer(tmp_path / "go-consumer")
        env = service_env(settings)
        services = [
            spawn([name], env, tmp_path / f"{name}.log") for name in ("ingest", "arbitrate")
        ]
        try:
            for role, record_type in ROLES.items():
                await poll_until(
                    lambda r=role, t=record_type: has_records(settings, r, t),
                    within=120,
                    interval=1.0,
                )
        finally:
            for service in reversed(services):
                stop_process(service)
        for name in ("ingest", "arbitrate"):
            log = (tmp_path / f"{name}.log").read_text(errors="replace")
            assert "Traceback" not in log, f"{name} logged an exception:\n{log[-3000:]}"

        written = {}
        for role, record_type in ROLES.items():
            for partition, offset, record in await read_topic(settings, role, record_type):
                written[(settings.topic(role), partition, offset)] = dataclasses.asdict(record)
        counts = Counter(topic for topic, _, _ in written)
        confluent = await asyncio.to_thread(
            read_with_confluent, settings, registry.ccompat_url, len(written)
        )
        go = read_with_go(binary, settings, registry.ccompat_url, counts)

    assert confluent.keys() == written.keys() == go.keys()
    for key, record in written.items():
        assert same(record, confluent[key]), (key, record, confluent[key])
        assert same(record, go[key]), (key, record, go[key])


async def has_records(settings: Settings, role: str, record_type: type, least: int = 10) -> bool:
    return len(await read_topic(settings, role, record_type)) >= least
