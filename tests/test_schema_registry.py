"""Our schemas in a real registry (Apicurio, runtime/registry.py), read by Confluent's client.

The registry is seeded with the codec's fixed ids, as for topics written without one.
Registration, compatibility and lookups go through runtime/registry_client.py; what the registry
holds is read back with confluent-kafka's ``SchemaRegistryClient``, and records written by
our codec are decoded with its ``AvroDeserializer``, which finds each schema by the id in the
record's header, with no file of this repository.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import uuid

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.registry_client import IncompatibleSchemaError, RegistryError, SchemaRegistry
from runtime.settings import Settings
from schemas.codec import EARLIER_SCHEMA_IDS, SCHEMA_IDS, encode, load_schema
from schemas.records import Quote
from schemas.registry_plan import codec_versions, schema_text, subject
from schemas.topics import RECORD_TOPICS
from tests.support_registry import (
    MUTATIONS,
    avro_values,
    backward_problems,
    same,
    temporary_registry,
)

pytestmark = pytest.mark.registry

FIML = Settings()  # the default topic names, as `make run` writes them
CONTEXT = SerializationContext("fiml.quotes", MessageField.VALUE)
QUOTE = Quote(
    symbol="BTC/USDT",
    ts_event=1_764_806_400_123_456,
    ts_ingest=1_764_806_400_223_456,
    seq=42,
    price=97_000.5,
    bid=97_000.0,
    ask=None,
    volume=1.5,
    provider="ccxt:kraken",
    confidence=0.9,
    providers=["ccxt:kraken", "ccxt:coinbase"],
    scores={"ccxt:kraken": 0.95, "ccxt:coinbase": 0.8},
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with temporary_registry(tmp_path_factory.mktemp("registry")) as registry:
        assert registry.seed(codec_versions(FIML.topic)) is True
        yield registry


@pytest.fixture(scope="module")
def confluent(registry):
    return SchemaRegistryClient({"url": registry.ccompat_url})


@pytest.fixture
def client(registry):
    with SchemaRegistry(registry.ccompat_url) as client:
        yield client


def new_subject() -> str:
    return subject(f"test-{uuid.uuid4().hex[:10]}.quotes")


def compact(schema: dict) -> str:
    return json.dumps(schema, separators=(",", ":"))


def frame(schema_id: int, schema: dict, value: dict) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema, named_schemas={}), value)
    return b"\0" + struct.pack(">I", schema_id) + body.getvalue()


def test_the_seeded_registry_lists_each_topic_subject_with_the_codec_ids(registry, confluent):
    versions = codec_versions(FIML.topic)
    assert confluent.get_subjects() == sorted({version.subject for version in versions})
    assert confluent.get_versions("fiml.quotes-value") == [1, 2]
    for name in {version.subject for version in versions}:
        history = [version for version in versions if version.subject == name]
        for number, version in enumerate(history, 1):
            registered = confluent.get_version(name, number)
            assert registered.schema_id == version.schema_id
            assert registered.schema.schema_str == version.text
    assert confluent.get_compatibility() == "BACKWARD"
    assert registry.seed(versions) is False  # a registry with subjects is never seeded again


def test_registering_under_topic_subjects_returns_the_codec_ids(client, confluent):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    for record_type, role in RECORD_TOPICS.items():
        schema_id, filename = SCHEMA_IDS[record_type]
        name = subject(f"{prefix}.{role}")
        client.set_compatibility(name, "BACKWARD")
        assert client.register(name, schema_text(filename)) == schema_id
        assert client.register(name, schema_text(filename)) == schema_id  # no new version
        assert confluent.get_versions(name) == [1]
        assert confluent.get_compatibility(name) == "BACKWARD"
        assert client.schema(schema_id) == schema_text(filename)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_the_registry_refuses_exactly_what_the_offline_check_refuses(mutation, client, confluent):
    before, after = mutation.apply()
    assert (backward_problems(before, after) == []) is mutation.compatible
    name = new_subject()
    client.set_compatibility(name, "BACKWARD")
    first = client.register(name, compact(before))
    assert client.is_compatible(name, compact(after)) is mutation.compatible
    if mutation.compatible:
        assert client.register(name, compact(after)) != first
        assert confluent.get_versions(name) == [1, 2]
    else:
        with pytest.raises(IncompatibleSchemaError) as refused:
            client.register(name, compact(after))
        assert refused.value.status == 409
        assert confluent.get_versions(name) == [1]


@pytest.mark.parametrize("record_type", list(RECORD_TOPICS), ids=lambda t: t.__name__)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_confluent_deserializer_reads_codec_records_field_for_field(record_type, data, confluent):
    values = data.draw(avro_values(load_schema(SCHEMA_IDS[record_type][1])))
    record = record_type(**values)
    decoded = AvroDeserializer(confluent)(encode(record), CONTEXT)
    assert same(dataclasses.asdict(record), decoded)


def test_records_of_an_earlier_quote_id_read_with_the_current_schema(confluent):
    earlier_id, filename = next((i, f) for i, (t, f) in EARLIER_SCHEMA_IDS.items() if t is Quote)
    old = {k: v for k, v in dataclasses.asdict(QUOTE).items() if k != "scores"}
    payload = frame(earlier_id, load_schema(filename), old)
    assert same(old, AvroDeserializer(confluent)(payload, CONTEXT))
    current = AvroDeserializer(confluent, schema_str=schema_text("quote.avsc"))
    assert same({**old, "scores": {}}, current(payload, CONTEXT))


def test_a_defaulted_field_evolution_is_read_by_old_and_new_readers(client, confluent):
    old_schema, new_schema = MUTATIONS[0].apply()
    name = new_subject()
    client.set_compatibility(name, "BACKWARD")
    old_id = client.register(name, compact(old_schema))
    new_id = client.register(name, compact(new_schema))
    written_old = dataclasses.asdict(QUOTE)
    written_new = {**written_old, "mid": 97_000.25}
    new_payload = frame(new_id, new_schema, written_new)
    old_payload = frame(old_id, old_schema, written_old)

    old_reader = AvroDeserializer(confluent, schema_str=compact(old_schema))
    new_reader = AvroDeserializer(confluent, schema_str=compact(new_schema))
    assert same(written_new, AvroDeserializer(confluent)(new_payload, CONTEXT))
    assert same(written_old, old_reader(new_payload, CONTEXT))  # mid skipped
    assert same({**written_old, "mid": None}, new_reader(old_payload, CONTEXT))  # its default
    assert same(written_old, old_reader(encode(QUOTE), CONTEXT))


def test_an_unknown_schema_id_is_a_404_for_both_clients(client, confluent):
    with pytest.raises(RegistryError) as unknown:
        client.schema(4040)
    assert (unknown.value.status, unknown.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as refused:
        AvroDeserializer(confluent)(b"\0" + struct.pack(">I", 4040) + encode(QUOTE)[5:], CONTEXT)
    assert refused.value.http_status_code == 404


def test_a_url_without_the_confluent_api_path_is_a_clear_error(registry):
    client = SchemaRegistry(registry.url)  # Apicurio's root, not its /apis/ccompat/v7
    with client, pytest.raises(RegistryError) as wrong:
        client.register("quotes-value", schema_text("quote.avsc"))
    assert wrong.value.status == 404 and registry.url in str(wrong.value)
