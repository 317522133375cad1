"""Consumers outside this repository read what the services write, through a schema registry.

Ingest and arbitration run as processes on the session broker with
``FIML_SCHEMA_REGISTRY_URL``, as ``fiml up --registry`` runs them: they register their
subjects and write the ids the registry returns, which here differ from the codec's fixed
ones (the registry holds other schemas first). The registry is all that a foreign consumer
needs: confluent-kafka's ``Consumer`` with its ``AvroDeserializer``, and the Go example
(examples/go-consumer: franz-go, its ``sr`` package and hamba/avro, built here from the Go
module proxy) read every record field for field as our codec does. The same holds for
services without the setting (the fixed ids, as ``make run``) and a registry seeded with
those ids.
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
from schemas.registry_plan import codec_versions
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
) -> tuple[dict[Key, dict], dict[str, set[int]]]:
    """The records of each topic as the Go example prints them, and the schema ids it saw
    per topic."""
    found: dict[Key, dict] = {}
    ids: dict[str, set[int]] = {}
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
            ids.setdefault(item["topic"], set()).add(item["schema_id"])
    return found, ids


@pytest.mark.timeout(900)
@pytest.mark.parametrize("wired", [True, False], ids=["registry-ids", "fixed-ids-seeded"])
async def test_confluent_and_go_consumers_read_the_services_topics(
    wired, topics, tmp_path, codec_ids
):
    """``wired``: the services run with FIML_SCHEMA_REGISTRY_URL on a registry holding other
    schemas first; else without it (the fixed ids, as ``make run``), on a seeded registry."""
    with temporary_registry(tmp_path / "registry") as registry:
        settings = dataclasses.replace(topics, symbols=("AAPL", "BTC/USDT"))
        if wired:
            settings = dataclasses.replace(settings, schema_registry_url=registry.ccompat_url)
            with SchemaRegistry(registry.ccompat_url) as client:
                for n in range(OTHERS):
                    other = {"type": "record", "name": f"Other{n}", "fields": []}
                    client.register("others-value", json.dumps(other))
            use_registry(settings)  # this process reads with the registry's ids too
            # the codec knows no fixed id of these types now: every record it reads below
            # carries the registry's id
            fixed = {codec.SCHEMA_IDS[t][0] for t in ROLES.values()}
            assert fixed.isdisjoint(codec.SCHEMAS_BY_ID)
        else:
            assert registry.seed(codec_versions(Settings().topic))
        ids = {t: codec.SCHEMAS_BY_TYPE[t].schema_id for t in ROLES.values()}
        assert (min(ids.values()) > OTHERS) is wired
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
        go, go_ids = read_with_go(binary, settings, registry.ccompat_url, counts)

    assert go_ids == {settings.topic(role): {ids[t]} for role, t in ROLES.items()}
    assert confluent.keys() == written.keys() == go.keys()
    for key, record in written.items():
        assert same(record, confluent[key]), (key, record, confluent[key])
        assert same(record, go[key]), (key, record, go[key])


async def has_records(settings: Settings, role: str, record_type: type, least: int = 10) -> bool:
    return len(await read_topic(settings, role, record_type)) >= least
