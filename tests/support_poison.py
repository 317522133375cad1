"""Poison: every kind of value a consumer may find on a topic that is not a record of its
type (schemas/codec.py ``REASONS``), and the reason it is skipped for."""

from __future__ import annotations

import random

from schemas import DecodeError, decode, encode
from schemas.codec import MAX_PAYLOAD_BYTES, Record


def poison_values(valid: Record, other: Record) -> list[bytes | None]:
    """Every kind of value that is not a record of ``valid``'s type, made from ``valid``
    and from ``other``, a record of another type."""
    body = encode(valid)
    return [
        None,
        b"",
        b"\x01" + body[1:],
        random.Random(16).randbytes(60),
        b"\x00\x00\x00\x03\xe7" + body[5:],
        encode(other),
        body[:-1],
        body + b"\x00",
        body[:5] + b"\x00" * (MAX_PAYLOAD_BYTES + 1),
    ]


def reason_of(value: bytes | None, record_type: type) -> str:
    """The reason a consumer of ``record_type`` skips ``value`` for."""
    try:
        decode(value, record_type)
    except DecodeError as error:
        return error.reason
    raise AssertionError("a poison record decoded")
