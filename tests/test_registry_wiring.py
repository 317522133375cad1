"""Services with ``FIML_SCHEMA_REGISTRY_URL`` (runtime/schema_ids.py) against a real registry.

The module's registry is not seeded and already holds other schemas, so the ids it gives
ours differ from the codec's fixed ones: whatever reads back right went through it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import uuid

import fastavro
import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from typer.testing import CliRunner

from fiml.cli import app
from runtime import schema_ids
from runtime.intake import decode_or_skip
from runtime.registry_client import IncompatibleSchemaError, SchemaRegistry
from runtime.schema_ids import Resolver, learn_ids, use_registry
from runtime.settings import Settings
from runtime.testing import free_port
from schemas import codec
from schemas.codec import SCHEMA_IDS, decode, encode, load_schema
from schemas.records import Quote
from schemas.registry_plan import codec_versions, schema_text, subject
from schemas.topics import RECORD_TOPICS, TopicRole
from tests.factories import Found, quote
from tests.support_registry import same, temporary_registry

pytestmark = pytest.mark.registry

OTHERS = 20  # schemas registered before ours: our ids are above every fixed one
QUOTE = quote("ETH/USDT", 3000.25, 9, bid=None, scores={"synthetic:alpha": 1.0})


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with temporary_registry(tmp_path_factory.mktemp("registry")) as registry:
        with SchemaRegistry(registry.ccompat_url) as client:
            for n in range(OTHERS):
                other = {"type": "record", "name": f"Other{n}", "fields": []}
                client.register("others-value", json.dumps(other))
        yield registry


def prefixed(registry) -> Settings:
    return Settings(
        topic_prefix=f"test-{uuid.uuid4().hex[:8]}", schema_registry_url=registry.ccompat_url
    )


def fixed_codec() -> None:
    """The codec of a process that has not met the registry: fixed ids only."""
    codec.SCHEMAS_BY_ID, codec.SCHEMAS_BY_TYPE = codec._register()


def test_a_service_registers_every_record_topic_and_writes_the_registry_ids(registry, codec_ids):
    settings = prefixed(registry)
    use_registry(settings)
    quotes = settings.topic(TopicRole.QUOTES)
    with SchemaRegistry(registry.ccompat_url) as client:
        ids = {
            t: client.register(subject(settings.topic(r)), schema_text(SCHEMA_IDS[t][1]))
            for t, r in RECORD_TOPICS.items()
        }
    assert min(ids.values()) > OTHERS
    assert {t: codec.SCHEMAS_BY_TYPE[t].schema_id for t in RECORD_TOPICS} == ids
    subjects = httpx.get(f"{registry.ccompat_url}/subjects").json()
    for role in RECORD_TOPICS.values():
        name = subject(settings.topic(role))
        assert name in subjects
        assert httpx.get(f"{registry.ccompat_url}/subjects/{name}/versions").json() == [1]
        config = httpx.get(f"{registry.ccompat_url}/config/{name}").json()
        assert config["compatibilityLevel"] == "BACKWARD"

    frame = encode(QUOTE)
    assert frame[1:5] == ids[Quote].to_bytes(4, "big")
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.ccompat_url}))
    read = deserializer(frame, SerializationContext(quotes, MessageField.VALUE))
    assert same(dataclasses.asdict(QUOTE), read)
    use_registry(settings)  # a restart: the same ids, no new version
    assert codec.SCHEMAS_BY_TYPE[Quote].schema_id == ids[Quote]
    versions = httpx.get(f"{registry.ccompat_url}/subjects/{subject(quotes)}/versions").json()
    assert versions == [1]


async def test_a_reader_learns_new_ids_and_an_evolution_through_the_registry(registry, codec_ids):
    settings = prefixed(registry)
    use_registry(settings)
    frame = encode(QUOTE)
    evolved = load_schema("quote.avsc")
    evolved["fields"].append({"name": "mid", "type": ["null", "double"], "default": None})
    name = subject(settings.topic(TopicRole.QUOTES))
    with SchemaRegistry(registry.ccompat_url) as client:
        evolved_id = client.register(name, json.dumps(evolved, separators=(",", ":")))
        incompatible = load_schema("quote.avsc")
        incompatible["fields"].append({"name": "venue", "type": "string"})
        with pytest.raises(IncompatibleSchemaError):
            client.register(name, json.dumps(incompatible, separators=(",", ":")))
    buffer = io.BytesIO()  # the evolved writer: a producer outside this repository
    writer = fastavro.parse_schema(codec.without_logical_types(evolved), named_schemas={})
    fastavro.schemaless_writer(buffer, writer, {**dataclasses.asdict(QUOTE), "mid": 3000.4})
    evolved_frame = codec.HEADER.pack(0, evolved_id) + buffer.getvalue()

    fixed_codec()  # another process: it knows the fixed ids only
    schema_ids._resolver.client.close()
    schema_ids._resolver = Resolver(SchemaRegistry(registry.ccompat_url))
    assert decode_or_skip(Found(frame), Quote) == QUOTE
    assert decode_or_skip(Found(evolved_frame), Quote) == QUOTE
    # an id nobody registered: skipped, and not asked again for a while
    unknown = codec.HEADER.pack(0, 4000) + frame[5:]
    assert decode_or_skip(Found(unknown), Quote) is None
    assert 4000 in schema_ids._resolver.misses

    fixed_codec()  # arbitration learns the ids of a batch before the engine decodes it
    await learn_ids([frame, evolved_frame, unknown])
    assert decode(frame, Quote) == QUOTE and decode(evolved_frame, Quote) == QUOTE


def test_a_service_refuses_to_start_on_a_subject_its_schema_cannot_read(registry, codec_ids):
    settings = prefixed(registry)
    name = subject(settings.topic(TopicRole.QUOTES))
    newer = load_schema("quote.avsc")
    next(f for f in newer["fields"] if f["name"] == "price")["type"] = "string"
    with SchemaRegistry(registry.ccompat_url) as client:
        client.register(name, json.dumps(newer))
    with pytest.raises(IncompatibleSchemaError, match="409"):
        use_registry(settings)
    env = {
        "FIML_SCHEMA_REGISTRY_URL": registry.ccompat_url,
        "FIML_TOPIC_PREFIX": settings.topic_prefix,
        "FIML_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    }
    result = CliRunner().invoke(app, ["topics", "create"], env=env)
    assert result.exit_code == 1
    assert "schema registry" in result.output and "409" in result.output


def test_fiml_registry_start_seeds_status_and_stop(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIML_")},
        "FIML_CACHE_DIR": Settings.from_env().cache_dir,
        "FIML_REGISTRY_PORT": str(port),
        "FIML_REGISTRY_DATA_DIR": str(tmp_path / "registry"),
    }

    def fiml(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fiml", "registry", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert fiml("status").returncode == 3
    started = fiml("start")
    try:
        assert started.returncode == 0, started.stderr
        assert f"FIML_SCHEMA_REGISTRY_URL=http://127.0.0.1:{port}/apis/ccompat/v7" in started.stdout
        assert "seeded" in started.stdout
        assert fiml("status").returncode == 0
        url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
        for version in codec_versions(Settings().topic):
            assert httpx.get(f"{url}/schemas/ids/{version.schema_id}").json()["schema"] == (
                version.text
            )
        assert "left as it is" in fiml("seed").stdout
    finally:
        stopped = fiml("stop")
    assert stopped.stdout.strip() == "stopped"
    assert fiml("status").returncode == 3
