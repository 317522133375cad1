"""The codec's ids with and without a schema registry (runtime/schema_ids.py), offline: the
codec hooks, a registry that does not answer, and no registry at all (today's behaviour).
What a real registry answers is tested in tests/test_registry_wiring.py."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import fastavro
import pytest

from runtime import schema_ids
from runtime.intake import decode_or_skip
from runtime.metrics import RECORDS_SKIPPED
from runtime.registry_client import SchemaRegistry
from runtime.schema_ids import RETRY_SECONDS, RegistryUnavailable, Resolver, learn_ids
from runtime.settings import Settings
from runtime.testing import free_port
from schemas import codec, registry_ids
from schemas.alerts import AlertRule
from schemas.codec import UnknownSchemaId, decode, encode
from schemas.records import Quote
from schemas.registry_ids import schema_from_text
from schemas.registry_plan import schema_text
from tests.factories import Found, quote

QUOTE = quote("AAPL", 190.5, 3, ask=None, volume=None, scores={"synthetic:alpha": 0.7})


def framed(schema_id: int, body: bytes) -> bytes:
    return codec.HEADER.pack(codec.MAGIC_BYTE, schema_id) + body


def evolved_quote() -> dict:
    """quote.avsc with a new defaulted field in the middle: BACKWARD compatible."""
    schema = codec.load_schema("quote.avsc")
    schema["fields"].insert(1, {"name": "venue", "type": "string", "default": "x"})
    return schema


def written_with(schema: dict, record: Quote, **extra: object) -> bytes:
    body = io.BytesIO()
    parsed = fastavro.parse_schema(codec.without_logical_types(schema), named_schemas={})
    fastavro.schemaless_writer(body, parsed, {**dataclasses.asdict(record), **extra})
    return body.getvalue()


def test_without_a_registry_url_the_fixed_ids_stay_and_nothing_is_asked(codec_ids):
    by_id, by_type = codec.SCHEMAS_BY_ID, codec.SCHEMAS_BY_TYPE
    schema_ids.use_registry(Settings())
    assert codec.SCHEMAS_BY_ID is by_id and codec.SCHEMAS_BY_TYPE is by_type
    assert schema_ids._resolver is None
    assert encode(QUOTE)[:5] == codec.HEADER.pack(0, 8)
    before = RECORDS_SKIPPED.labels("t.intake", "unknown_schema")._value.get()
    assert decode_or_skip(Found(framed(99, b"")), Quote) is None
    assert RECORDS_SKIPPED.labels("t.intake", "unknown_schema")._value.get() == before + 1


def test_writer_ids_replace_the_fixed_ones_and_a_taken_fixed_id_is_dropped(codec_ids):
    registry_ids.use_writer_ids({Quote: 12})
    frame = encode(QUOTE)
    assert frame[:5] == codec.HEADER.pack(0, 12)
    assert decode(frame, Quote) == QUOTE
    with pytest.raises(UnknownSchemaId) as unknown:
        decode(framed(8, frame[5:]), Quote)
    assert unknown.value.schema_id == 8 and unknown.value.reason == "unknown_schema"
    # AlertRule's fixed id 12 now means Quote; AlertRule has no topic, so no registry id
    assert codec.SCHEMAS_BY_ID[12].record_type is Quote
    assert codec.SCHEMAS_BY_TYPE[AlertRule].schema_id == 12
    assert AlertRule not in {s.record_type for s in codec.SCHEMAS_BY_ID.values()}


def test_a_schema_from_the_registry_reads_old_and_new_writers_as_the_current_type(codec_ids):
    same = schema_from_text(40, schema_text("quote.avsc"))
    assert same.reader is None and same.header == codec.HEADER.pack(0, 40)
    newer = schema_from_text(41, json.dumps(evolved_quote()))
    assert newer.reader is not None and newer.record_type is Quote
    registry_ids.add_schema(same)
    registry_ids.add_schema(newer)
    assert decode(framed(40, encode(QUOTE)[5:]), Quote) == QUOTE
    assert decode(framed(41, written_with(evolved_quote(), QUOTE, venue="XNAS")), Quote) == QUOTE
    assert decode(encode(QUOTE), Quote) == QUOTE  # the fixed id 8 still reads


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            '{"type":"record","name":"Other","namespace":"fiml.v1","fields":[]}',
            "not one of our record types",
        ),
        ('{"type":"record","name":"Quote","fields":[]}', "not one of our record types"),
        ('"string"', "not an Avro record"),
        (
            '{"type":"record","name":"Quote","namespace":"fiml.v1","fields":[{"name":"a"}]}',
            "does not parse",
        ),
    ],
)
def test_a_registry_schema_that_is_not_ours_is_refused(text, why):
    with pytest.raises(ValueError, match=why):
        schema_from_text(50, text)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_registry_that_does_not_answer_skips_readers_and_stops_arbitration(codec_ids):
    clock = Clock()
    silent = SchemaRegistry(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    schema_ids._resolver = Resolver(silent, clock)
    frame = framed(61, encode(QUOTE)[5:])
    assert decode_or_skip(Found(frame), Quote) is None
    # not asked again for RETRY_SECONDS: raw ticks wait (the relay retries), never DLQ'd
    with pytest.raises(RegistryUnavailable, match="did not answer lately"):
        await learn_ids([frame])
    clock.now += RETRY_SECONDS + 1
    with pytest.raises(RegistryUnavailable, match="ConnectError"):
        await learn_ids([frame])
    await learn_ids([None, b"", b"\1\0\0\0\x3d", encode(QUOTE)])  # nothing to ask


def test_registry_settings_and_credentials_stay_out_of_the_repr():
    settings = Settings.from_env(
        {
            "FIML_SCHEMA_REGISTRY_URL": "http://u:pw-in-url@registry:8080/apis/ccompat/v7",
            "FIML_SCHEMA_REGISTRY_USERNAME": "user-name",
            "FIML_SCHEMA_REGISTRY_PASSWORD": "pass-word",
        }
    )
    assert settings.schema_registry_password == "pass-word"
    for secret in ("pw-in-url", "user-name", "pass-word"):
        assert secret not in repr(settings)
    assert Settings.from_env(settings.to_env()) == settings


class Answers(BaseHTTPRequestHandler):
    """A registry that knows no id: 404 for each, 401 for id 401 (refused credentials)."""

    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        status = 401 if self.path.endswith("/401") else 404
        body = json.dumps({"error_code": status * 100 + 3, "message": "no"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answers() -> Iterator[str]:
    Answers.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_misses_are_remembered_bounded_and_refused_credentials_are_no_miss(
    answers, codec_ids, monkeypatch
):
    monkeypatch.setattr(schema_ids, "MAX_MISSES", 3)
    clock = Clock()
    resolver = schema_ids._resolver = Resolver(SchemaRegistry(answers), clock)
    for schema_id in (70, 71, 72, 70):
        assert schema_ids.learn_schema(schema_id) is False
    assert Answers.asked == ["/schemas/ids/70", "/schemas/ids/71", "/schemas/ids/72"]
    assert schema_ids.learn_schema(73) is False  # the oldest miss makes room
    assert list(resolver.misses) == [71, 72, 73]
    clock.now += schema_ids.MISS_SECONDS + 1
    assert schema_ids.learn_schema(71) is False and Answers.asked[-1] == "/schemas/ids/71"
    with pytest.raises(RegistryUnavailable, match="401"):
        await learn_ids([framed(401, b"")])
    assert 401 not in resolver.misses
