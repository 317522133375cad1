"""Avro encoding in the Confluent wire format: byte 0, a 4-byte big-endian schema id, the body.

Schema ids are fixed by this module (see ``SCHEMA_IDS``); no registry is needed to read
our topics. With a schema registry (runtime/schema_ids.py) the ids are the registry's
instead (``schemas/registry_ids.py`` sets them in ``SCHEMAS_BY_ID`` and ``SCHEMAS_BY_TYPE``).
A record type's schema evolves by a new id: records written with an earlier id
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

from schemas.alerts import AlertRule, FiredAlert, WebhookDeadLetter
from schemas.books import BookEvent, ConsolidatedBook
from schemas.news import NewsItem
from schemas.records import (
    Candle,
    Demand,
    ProviderStatus,
    Quote,
    RawTick,
    Rejected,
    Trade,
)

MAGIC_BYTE = 0
Record = (
    RawTick
    | ProviderStatus
    | Quote
    | Candle
    | Trade
    | Rejected
    | Demand
    | BookEvent
    | ConsolidatedBook
    | NewsItem
    | AlertRule
    | FiredAlert
    | WebhookDeadLetter
)
"""Every record type the codec encodes: the types of ``SCHEMA_IDS``."""

HEADER = struct.Struct(">BI")
AVRO_DIR = Path(__file__).parent / "avro"

SCHEMA_IDS: dict[type, tuple[int, str]] = {
    RawTick: (1, "raw_tick.avsc"),
    ProviderStatus: (15, "provider_status.avsc"),
    Quote: (8, "quote.avsc"),
    Candle: (4, "candle.avsc"),
    Trade: (5, "trade.avsc"),
    Rejected: (6, "rejected.avsc"),
    Demand: (7, "demand.avsc"),
    BookEvent: (9, "book_event.avsc"),
    ConsolidatedBook: (10, "consolidated_book.avsc"),
    NewsItem: (11, "news_item.avsc"),
    AlertRule: (12, "alert_rule.avsc"),
    FiredAlert: (13, "fired_alert.avsc"),
    WebhookDeadLetter: (14, "webhook_dead_letter.avsc"),
}

EARLIER_SCHEMA_IDS: dict[int, tuple[type, str]] = {
    2: (ProviderStatus, "earlier/provider_status_v1.avsc"),
    3: (Quote, "earlier/quote_v1.avsc"),
}

T = TypeVar("T", bound=Record)


MAX_PAYLOAD_BYTES = 256 * 1024

NULL = "null"
EMPTY = "empty"
OVERSIZE = "oversize"
BAD_MAGIC = "bad_magic"
UNKNOWN_SCHEMA = "unknown_schema"
WRONG_TYPE = "wrong_type"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
REASONS = (NULL, EMPTY, OVERSIZE, BAD_MAGIC, UNKNOWN_SCHEMA, WRONG_TYPE, TRUNCATED, CORRUPT)


class DecodeError(ValueError):
    """A payload that is not one of our Avro records: ``reason`` (one of ``REASONS``) says
    what kind of failure for machines, the message says why for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownSchemaId(DecodeError):
    """A schema id the codec does not know (reason ``unknown_schema``); a registry may."""

    def __init__(self, schema_id: int, message: str) -> None:
        super().__init__(UNKNOWN_SCHEMA, message)
        self.schema_id = schema_id


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
    schema: dict[str, Any] = json.loads((AVRO_DIR / filename).read_text())
    return schema


def without_logical_types(node: Any) -> Any:
    """An Avro schema with its logical types replaced by their underlying types."""
    if isinstance(node, dict):
        if "logicalType" in node and isinstance(node.get("type"), str):
            return node["type"]
        return {key: without_logical_types(value) for key, value in node.items()}
    if isinstance(node, list):
        return [without_logical_types(item) for item in node]
    return node


def _registered(schema_id: int, record_type: type, filename: str) -> RegisteredSchema:
    source = load_schema(filename)
    parsed = fastavro.parse_schema(without_logical_types(source), named_schemas={})
    names = tuple(f.name for f in dataclasses.fields(record_type))
    positional = tuple(f["name"] for f in source["fields"]) == names
    setters = tuple(getattr(record_type, name).__set__ for name in names)
    return RegisteredSchema(
        schema_id,
        record_type,
        source,
        parsed,
        names,
        HEADER.pack(MAGIC_BYTE, schema_id),
        positional,
        setters,
    )


def _build(
    record_type: type[T], setters: tuple[Callable[[Any, Any], None], ...], values: Iterable[Any]
) -> T:
    """``record_type(*values)`` without the frozen dataclass ``__init__``, which sets each
    field through a call of ``object.__setattr__``: setting the slots directly takes a
    third less time, once per decoded record. Records have no ``__post_init__`` to skip."""
    record = object.__new__(record_type)
    for set_field, value in zip(setters, values):  # noqa: B905 (a keyword makes zip slower)
        set_field(record, value)
    return record


def _register() -> tuple[dict[int, RegisteredSchema], dict[type, RegisteredSchema]]:
    by_type = {
        record_type: _registered(schema_id, record_type, filename)
        for record_type, (schema_id, filename) in SCHEMA_IDS.items()
    }
    by_id = {schema.schema_id: schema for schema in by_type.values()}
    for schema_id, (record_type, filename) in EARLIER_SCHEMA_IDS.items():
        current = by_type[record_type]
        by_id[schema_id] = dataclasses.replace(
            _registered(schema_id, record_type, filename),
            positional=current.positional,
            reader=current.parsed,
        )
    return by_id, by_type


SCHEMAS_BY_ID, SCHEMAS_BY_TYPE = _register()


def encode(record: Record) -> bytes:
    """Encode a typed record as Confluent-framed Avro."""
    schema = SCHEMAS_BY_TYPE[type(record)]
    buffer = io.BytesIO()
    buffer.write(schema.header)
    fastavro.schemaless_writer(
        buffer, schema.parsed, {name: getattr(record, name) for name in schema.field_names}
    )
    return buffer.getvalue()


def decode(payload: bytes | None, expected: type[T] | None = None) -> T:
    """Decode a Confluent-framed Avro payload into its typed record.

    Whatever ``payload`` is, returns a record or raises :class:`DecodeError`: for a missing
    value (a Kafka tombstone), an empty, oversize (over ``MAX_PAYLOAD_BYTES``) or truncated
    payload, a wrong magic byte, an unknown schema id, a record of another type than
    ``expected``, a corrupt body or bytes left over.
    """
    if payload is None:
        raise DecodeError(NULL, "no value: a tombstone, not a record")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise DecodeError(CORRUPT, f"a {type(payload).__name__}, not bytes")
    if not payload:
        raise DecodeError(EMPTY, "an empty value")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(
            OVERSIZE, f"{len(payload)} bytes, over the limit of {MAX_PAYLOAD_BYTES} for a record"
        )
    if len(payload) < HEADER.size:
        raise DecodeError(
            TRUNCATED, f"truncated payload: {len(payload)} bytes, the header alone has 5"
        )
    magic, schema_id = HEADER.unpack_from(payload)
    if magic != MAGIC_BYTE:
        raise DecodeError(BAD_MAGIC, f"bad magic byte {magic}: not Confluent-framed Avro")
    schema = SCHEMAS_BY_ID.get(schema_id)
    if schema is None:
        known = ", ".join(str(i) for i in sorted(SCHEMAS_BY_ID))
        raise UnknownSchemaId(schema_id, f"unknown schema id {schema_id} (known ids: {known})")
    if expected is not None and schema.record_type is not expected:
        raise DecodeError(
            WRONG_TYPE,
            f"schema id {schema_id} is {schema.record_type.__name__}, expected {expected.__name__}",
        )
    body = io.BytesIO(payload)
    body.seek(HEADER.size)
    name = schema.record_type.__name__
    try:
        # A record schema always reads a dict.
        values: dict[str, Any] = fastavro.schemaless_reader(body, schema.parsed, schema.reader)  # type: ignore[assignment]
    except (EOFError, StopIteration) as exc:
        raise DecodeError(
            TRUNCATED, f"truncated payload for {name}: the body ends early ({len(payload)} bytes)"
        ) from exc
    except Exception as exc:  # fastavro's errors on bad bytes have no common base
        if body.tell() >= len(payload):
            raise DecodeError(
                TRUNCATED,
                f"truncated payload for {name}: the body ends early ({len(payload)} bytes)",
            ) from exc
        raise DecodeError(CORRUPT, f"corrupt {name} body: {exc}") from exc
    if body.tell() != len(payload):
        extra = len(payload) - body.tell()
        raise DecodeError(CORRUPT, f"{extra} bytes left after the {name} body")
    if schema.positional:
        return _build(schema.record_type, schema.setters, values.values())
    record: T = schema.record_type(**values)
    return record
