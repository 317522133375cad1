"""A schema registry's ids in the codec: the schemas it gives for ids, and the ids written.

runtime/schema_ids.py asks the registry; :func:`use_writer_ids` makes the codec write and
know only the registry's ids, and :func:`add_schema` teaches it an id a reader met
(:func:`schema_from_text`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import fastavro

from schemas import codec
from schemas.codec import HEADER, MAGIC_BYTE, RegisteredSchema


def _full_name(source: dict[str, Any]) -> str:
    name = str(source.get("name", ""))
    namespace = source.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def schema_from_text(schema_id: int, text: str) -> RegisteredSchema:
    """The schema a registry gave for ``schema_id``: the record type of the same full name,
    its records resolved to the current schema unless ``text`` is the current schema.

    Raises ValueError for a text that is not an Avro record schema of one of our types.
    """
    source = json.loads(text)
    if not isinstance(source, dict) or source.get("type") != "record":
        raise ValueError(f"schema {schema_id} is not an Avro record schema")
    name = _full_name(source)
    current = next(
        (s for s in codec.SCHEMAS_BY_TYPE.values() if _full_name(s.source) == name), None
    )
    if current is None:
        raise ValueError(f"schema {schema_id} is {name}, not one of our record types")
    header = HEADER.pack(MAGIC_BYTE, schema_id)
    if source == current.source:
        return dataclasses.replace(current, schema_id=schema_id, header=header)
    try:
        parsed = fastavro.parse_schema(codec.without_logical_types(source), named_schemas={})
    except Exception as error:  # fastavro's schema errors have no common base
        raise ValueError(f"schema {schema_id} does not parse: {error}") from None
    return dataclasses.replace(
        current,
        schema_id=schema_id,
        source=source,
        parsed=parsed,
        header=header,
        reader=current.parsed,
    )


def add_schema(schema: RegisteredSchema) -> None:
    """Read records of ``schema.schema_id`` with ``schema`` from now on."""
    codec.SCHEMAS_BY_ID = {**codec.SCHEMAS_BY_ID, schema.schema_id: schema}


def use_writer_ids(ids: dict[type, int]) -> None:
    """Write each record type of ``ids`` with its id (a registry's), and know only those
    ids: an id, fixed or not, means what the registry says. Types not in ``ids`` keep their
    fixed id unless the registry gave it to another schema."""
    by_type = {
        record_type: dataclasses.replace(
            schema, schema_id=ids[record_type], header=HEADER.pack(MAGIC_BYTE, ids[record_type])
        )
        if record_type in ids
        else schema
        for record_type, schema in codec.SCHEMAS_BY_TYPE.items()
    }
    taken = set(ids.values())
    by_id = {
        schema.schema_id: schema
        for record_type, schema in by_type.items()
        if record_type in ids or schema.schema_id not in taken
    }
    codec.SCHEMAS_BY_ID, codec.SCHEMAS_BY_TYPE = by_id, by_type
