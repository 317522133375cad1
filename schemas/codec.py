"""Avro encoding in the Confluent wire format: byte 0, a 4-byte big-endian schema id, the body.

Schema ids are fixed by this module (see ``SCHEMA_IDS``); no registry is needed to read
our topics. A record type's schema evolves by a new id: records written with an earlier id
(``EARLIER_SCHEMA_IDS``) are still read, resolved to the current schema by Avro's rules
(fields added since take their defaults). The ``.avsc`` files keep ``timestamp-micros``
logical types for other readers; this codec reads and writes those fields as plain integers.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import fastavro

from schemas.news import NewsItem
from schemas.records import (
    Candle,
    Demand,
    ProviderStatus,
    Quote,
    RawTick,
    Record,
    Rejected,
    Trade,
)

MAGIC_BYTE = 0
HEADER = struct.Struct(">BI")
AVRO_DIR = Path(__file__).parent / "avro"

SCHEMA_IDS: dict[type, tuple[int, str]] = {
    RawTick: (1, "raw_tick.avsc"),
    ProviderStatus: (2, "provider_status.avsc"),
    Quote: (8, "quote.avsc"),
    Candle: (4, "candle.avsc"),
    Trade: (5, "trade.avsc"),
    Rejected: (6, "rejected.avsc"),
    Demand: (7, "demand.avsc"),
    NewsItem: (11, "news_item.avsc"),
}

EARLIER_SCHEMA_IDS: dict[int, tuple[type, str]] = {
    3: (Quote, "earlier/quote_v1.avsc"),
}

T = TypeVar("T", bound=Record)


class DecodeError(ValueError):
    """A payload that is not one of our Avro records; the message says why."""


@dataclass(frozen=True)
class RegisteredSchema:
    """One schema with its fixed id, its record type and its parsed form.

    ``header`` is the Confluent frame of its records; ``positional`` says whether the
    schema lists the record type's fields in the same order, so that a decoded record can
    be built from its values alone (with ``setters``, see :func:`_build`). ``reader`` is
    the current schema an earlier one is resolved to (None for a current schema).
    """

    schema_id: int
    record_type: type
    source: dict[str, Any]
    parsed: Any
    field_names: tuple[str, ...]
    header: bytes
    positional: bool
    setters: tuple[Callable[[Any, Any], None], ...]
    reader: Any = None


def load_schema(filename: str) -> dict[str, Any]:
    """The ``.avsc`` file as written, logical types included."""
    return json.loads((AVRO_DIR / filename).read_text())


def _without_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        if "logicalType" in node and isinstance(node.get("type"), str):
            return node["type"]
        return {key: _without_logical_types(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_logical_types(item) for item in node]
    return node


def _registered(schema_id: int, record_type: type, filename: str) -> RegisteredSchema:
    source = load_schema(filename)
    parsed = fastavro.parse_schema(_without_logical_types(source), named_schemas={})
    names = tuple(f.name for f in dataclasses.fields(record_type))
    positional = tuple(f["name"] for f in source["fields"]) == names
    setters = tuple(getattr(record_type, name).__set__ for name in names)
    return RegisteredSchema(schema_id, record_type, source, parsed, names,
                            HEADER.pack(MAGIC_BYTE, schema_id), positional, setters)


def _build(record_type: type[T], setters: tuple[Callable[[Any, Any], None], ...],
           values: Iterable[Any]) -> T:
    """``record_type(*values)`` without the frozen dataclass ``__init__``, which sets each
    field through a call of ``object.__setattr__``: setting the slots directly takes a
    third less time, once per decoded record. Records have no ``__post_init__`` to skip."""
    record = object.__new__(record_type)
    for set_field, value in zip(setters, values):  # noqa: B905 (a keyword makes zip slower)
        set_field(record, value)
    return record


def _register() -> tuple[dict[int, RegisteredSchema], dict[type, RegisteredSchema]]:
    by_type = {record_type: _registered(schema_id, record_type, filename)
               for record_type, (schema_id, filename) in SCHEMA_IDS.items()}
    by_id = {schema.schema_id: schema for schema in by_type.values()}
    for schema_id, (record_type, filename) in EARLIER_SCHEMA_IDS.items():
        current = by_type[record_type]
        by_id[schema_id] = dataclasses.replace(_registered(schema_id, record_type, filename),
                                               positional=current.positional,
                                               reader=current.parsed)
    return by_id, by_type


SCHEMAS_BY_ID, SCHEMAS_BY_TYPE = _register()


def encode(record: Record) -> bytes:
    """Encode a typed record as Confluent-framed Avro."""
    schema = SCHEMAS_BY_TYPE[type(record)]
    buffer = io.BytesIO()
    buffer.write(schema.header)
    fastavro.schemaless_writer(buffer, schema.parsed,
                               {name: getattr(record, name) for name in schema.field_names})
    return buffer.getvalue()


def decode(payload: bytes, expected: type[T] | None = None) -> T:
    """Decode a Confluent-framed Avro payload into its typed record.

    Raises :class:`DecodeError` for an empty or truncated payload, a wrong magic byte, an
    unknown schema id, a record of another type than ``expected``, or bytes left over.
    """
    if len(payload) < HEADER.size:
        raise DecodeError(f"truncated payload: {len(payload)} bytes, the header alone has 5")
    magic, schema_id = HEADER.unpack_from(payload)
    if magic != MAGIC_BYTE:
        raise DecodeError(f"bad magic byte {magic}: not Confluent-framed Avro")
    schema = SCHEMAS_BY_ID.get(schema_id)
    if schema is None:
        known = ", ".join(str(i) for i in sorted(SCHEMAS_BY_ID))
        raise DecodeError(f"unknown schema id {schema_id} (known ids: {known})")
    if expected is not None and schema.record_type is not expected:
        raise DecodeError(
            f"schema id {schema_id} is {schema.record_type.__name__}, expected {expected.__name__}"
        )
    body = io.BytesIO(payload)
    body.seek(HEADER.size)
    try:
        values = fastavro.schemaless_reader(body, schema.parsed, schema.reader)
    except (EOFError, StopIteration, struct.error, ValueError, IndexError,
            UnicodeDecodeError) as exc:
        name = schema.record_type.__name__
        if body.tell() >= len(payload) or isinstance(exc, EOFError | StopIteration):
            raise DecodeError(
                f"truncated payload for {name}: the body ends early ({len(payload)} bytes)"
            ) from exc
        raise DecodeError(f"corrupt {name} body: {exc}") from exc
    if body.tell() != len(payload):
        extra = len(payload) - body.tell()
        raise DecodeError(f"{extra} bytes left after the {schema.record_type.__name__} body")
    if schema.positional:
        return _build(schema.record_type, schema.setters, values.values())
    return schema.record_type(**values)
