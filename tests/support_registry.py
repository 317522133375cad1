"""Shared builders of the schema evolution and registry tests.

- :func:`avro_values`: a hypothesis strategy of the values an Avro schema can write.
- :func:`backward_problems` and :func:`read_problem`: whether a reader schema can read what a
  writer schema wrote, by Avro's resolution rules (the ``avro`` package's port of Java Avro's
  SchemaCompatibility, the check that registries run) and by fastavro actually reading it.
- :data:`MUTATIONS`: changes to our schemas that BACKWARD compatibility takes or refuses.
- :func:`temporary_registry`: a registry of its own (runtime/registry.py) on a free port.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from hypothesis import strategies as st

from runtime.processes import stop_process
from runtime.registry import LocalRegistry
from runtime.settings import Settings
from runtime.testing import free_port
from schemas.codec import load_schema
from schemas.times import datetime_to_micros

Schema = Any
MIN_MICROS = datetime_to_micros(datetime(1, 1, 1, tzinfo=UTC))
MAX_MICROS = datetime_to_micros(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))

PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32),
    "double": st.floats(),
    "bytes": st.binary(max_size=8),
    "string": st.text(max_size=8),
}


def avro_values(
    schema: Schema, names: dict[str, st.SearchStrategy[Any]] | None = None, namespace: str = ""
) -> st.SearchStrategy[Any]:
    """Values of ``schema``; ``timestamp-micros`` longs stay within the years 1 to 9999."""
    names = {} if names is None else names
    if isinstance(schema, list):
        return st.one_of([avro_values(branch, names, namespace) for branch in schema])
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return PRIMITIVES[schema]
        return st.deferred(lambda: names.get(schema) or names[f"{namespace}.{schema}"])
    kind = schema["type"]
    if not isinstance(kind, str) or kind not in ("record", "enum", "array", "map", "fixed"):
        if schema.get("logicalType") == "timestamp-micros":
            return st.integers(MIN_MICROS, MAX_MICROS)
        return avro_values(kind, names, namespace)
    if kind == "array":
        return st.lists(avro_values(schema["items"], names, namespace), max_size=3)
    if kind == "map":
        values = avro_values(schema["values"], names, namespace)
        return st.dictionaries(st.text(max_size=5), values, max_size=3)
    space = schema.get("namespace", namespace)
    full_name = schema["name"] if "." in schema["name"] else f"{space}.{schema['name']}"
    if kind == "enum":
        names[full_name] = st.sampled_from(schema["symbols"])
    elif kind == "fixed":
        names[full_name] = st.binary(min_size=schema["size"], max_size=schema["size"])
    else:
        names[full_name] = st.fixed_dictionaries(
            {field["name"]: avro_values(field["type"], names, space) for field in schema["fields"]}
        )
    return names[full_name]


def backward_problems(writer: Schema, reader: Schema) -> list[str]:
    """Why ``reader`` cannot read every record ``writer`` writes (none when it can)."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = sorted(kind.value for kind in result.incompatibilities)
    return [
        f"{', '.join(kinds)} at {', '.join(sorted(result.locations))}: "
        f"{'; '.join(sorted(result.messages))}"
    ]


def read_problem(writer: Schema, reader: Schema, record: dict[str, Any]) -> str | None:
    """Why fastavro fails to read ``record``, written with ``writer``, as ``reader``: an
    error, or a field whose value is neither the written one nor the reader's default."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(writer, named_schemas={}), record)
    buffer.seek(0)
    try:
        read = fastavro.schemaless_reader(
            buffer,
            fastavro.parse_schema(writer, named_schemas={}),
            fastavro.parse_schema(reader, named_schemas={}),
        )
    except Exception as error:
        return f"{type(error).__name__}: {str(error)[:300]}"
    for field in reader["fields"]:
        name = field["name"]
        expected = record[name] if name in record else field.get("default")
        if not same(expected, read.get(name)):
            return f"field {name}: wrote {expected!r}, read {read.get(name)!r}"
    return None


def same(written: Any, read: Any) -> bool:
    """Whether ``read`` is ``written`` after Avro's promotions and JSON's: NaN is NaN, a number
    its value, a datetime or an ISO 8601 time its microseconds, a string its UTF-8 bytes."""
    if isinstance(read, datetime) or (isinstance(read, str) and isinstance(written, int)):
        read = datetime_to_micros(read if isinstance(read, datetime) else iso_time(read))
    if isinstance(read, float) or isinstance(written, float):
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (read, written)):
            return False
        return float(read) == float(written) or (math.isnan(read) and math.isnan(written))
    if isinstance(read, str) and isinstance(written, bytes):
        return read.encode() == written
    if isinstance(read, bytes) and isinstance(written, str):
        return read == written.encode()
    if isinstance(read, dict) and isinstance(written, dict):
        return read.keys() == written.keys() and all(same(written[k], read[k]) for k in read)
    if isinstance(read, list) and isinstance(written, list):
        return len(read) == len(written) and all(map(same, written, read))
    return bool(read == written) and type(read) is type(written)


def iso_time(text: str) -> datetime:
    """An RFC 3339 time as Go writes it (``Z``, up to nine decimals; microseconds kept)."""
    head, _, fraction = text.removesuffix("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")


@dataclass(frozen=True)
class Mutation:
    """A change to one of our schemas, and whether BACKWARD compatibility takes it."""

    name: str
    filename: str
    change: Callable[[Schema], None]
    compatible: bool

    def apply(self) -> tuple[Schema, Schema]:
        """The schema before and after the change."""
        before = load_schema(self.filename)
        after = copy.deepcopy(before)
        self.change(after)
        return before, after


def field_of(schema: Schema, name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


MUTATIONS = [
    Mutation(
        "a new field with a default",
        "quote.avsc",
        lambda s: s["fields"].append({"name": "mid", "type": ["null", "double"], "default": None}),
        True,
    ),
    Mutation(
        "a field without a default removed",
        "quote.avsc",
        lambda s: s["fields"].remove(field_of(s, "confidence")),
        True,
    ),
    Mutation(
        "int promoted to long",
        "candle.avsc",
        lambda s: field_of(s, "revision").update(type="long"),
        True,
    ),
    Mutation(
        "an enum symbol added",
        "provider_status.avsc",
        lambda s: field_of(s, "state")["type"]["symbols"].append("MAINTENANCE"),
        True,
    ),
    Mutation(
        "a required field made optional",
        "quote.avsc",
        lambda s: field_of(s, "price").update(type=["null", "double"], default=None),
        True,
    ),
    Mutation(
        "a new field without a default",
        "quote.avsc",
        lambda s: s["fields"].append({"name": "mid", "type": "double"}),
        False,
    ),
    Mutation(
        "a field's type changed",
        "quote.avsc",
        lambda s: field_of(s, "price").update(type="string"),
        False,
    ),
    Mutation(
        "long narrowed to int", "quote.avsc", lambda s: field_of(s, "seq").update(type="int"), False
    ),
    Mutation(
        "an enum symbol removed",
        "provider_status.avsc",
        lambda s: field_of(s, "state")["type"]["symbols"].remove("DOWN"),
        False,
    ),
    Mutation(
        "an optional field made required",
        "quote.avsc",
        lambda s: field_of(s, "bid").update(type="double", default=0.0),
        False,
    ),
    Mutation("the record renamed", "quote.avsc", lambda s: s.update(name="Quotation"), False),
]


def registry_cache_dir() -> Path:
    """The FIML cache where the registry is built once (as for the Kafka jars)."""
    return Path(Settings.from_env().cache_dir)


@contextlib.contextmanager
def temporary_registry(data_dir: Path) -> Iterator[LocalRegistry]:
    """A registry of its own on a free port, stopped when the block ends or this process dies."""
    registry = LocalRegistry(registry_cache_dir(), data_dir, port=free_port())
    process = registry.start(stop_with_parent=True)
    try:
        yield registry
    finally:
        stop_process(process, timeout=30)
