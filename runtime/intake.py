"""The one rule of every consumer for a record that is not one of ours: count it, log it,
skip it.

A value that does not decode (a tombstone, empty, oversize, truncated or corrupt bytes, a
wrong magic byte, an unknown schema id, another record type: :data:`schemas.codec.REASONS`)
or that decodes but makes no sense to its consumer (``invalid``, or a reason of the
consumer's own) goes to :func:`skip`: it is counted in ``fiml_records_skipped_total`` per
topic and reason and logged with its topic, partition and offset, at most once per
``LOG_EVERY_SECONDS`` per topic and reason (the next line says how many were not logged).
The consumer then goes on with the next record: nothing a producer writes stops it or makes
it read the same record again. Arbitration also writes undecodable raw ticks to the DLQ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from runtime.metrics import RECORDS_SKIPPED
from runtime.schema_ids import learn_schema
from schemas import DecodeError, decode
from schemas.codec import Record, UnknownSchemaId

log = logging.getLogger("fiml.intake")

INVALID = "invalid"
LOG_EVERY_SECONDS = 10.0
DETAIL_CHARS = 300

T = TypeVar("T", bound=Record)


class Located(Protocol):
    """A record as Kafka returned it (aiokafka's ConsumerRecord has these)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


class _Throttle:
    """When each (topic, reason) was last logged, and how many skips went unlogged since."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.logged: dict[tuple[str, str], float] = {}
        self.unlogged: dict[tuple[str, str], int] = {}

    def admit(self, topic: str, reason: str) -> int | None:
        """None if this skip is not to be logged; else how many were not logged before it."""
        key = (topic, reason)
        now = self.clock()
        last = self.logged.get(key)
        if last is not None and now - last < LOG_EVERY_SECONDS:
            self.unlogged[key] = self.unlogged.get(key, 0) + 1
            return None
        self.logged[key] = now
        return self.unlogged.pop(key, 0)


_throttle = _Throttle()


def skip(topic: str, partition: int, offset: int, reason: str, detail: str) -> None:
    """Count and (rate-limited) log one record a consumer skips."""
    RECORDS_SKIPPED.labels(topic, reason).inc()
    unlogged = _throttle.admit(topic, reason)
    if unlogged is None:
        return
    more = f" ({unlogged} more {reason} records skipped unlogged since)" if unlogged else ""
    log.warning(
        "skipped a record at %s-%d:%d (%s): %s%s",
        topic,
        partition,
        offset,
        reason,
        detail[:DETAIL_CHARS],
        more,
    )


def _decode(value: bytes | None, expected: type[T]) -> T:
    try:
        return decode(value, expected)
    except UnknownSchemaId as unknown:
        if not learn_schema(unknown.schema_id):
            raise
        return decode(value, expected)


def decode_again(
    value: bytes | None, expected: type[T], check: Callable[[T], object] | None = None
) -> T | None:
    """A value read again to rebuild a consumer's state, as :func:`decode_or_skip` reads it,
    or None: not counted nor logged again (it was when first read)."""
    try:
        decoded = _decode(value, expected)
        if check is not None:
            check(decoded)
    except Exception:  # a DecodeError, or any failure of the check: the record's, not ours
        return None
    return decoded


def decode_or_skip(
    record: Located, expected: type[T], check: Callable[[T], object] | None = None
) -> T | None:
    """The record's value as ``expected``, or None once it was skipped with its reason:
    the decode error's, or ``invalid`` if ``check(value)`` raises (a record its consumer
    cannot use, such as a time no date can show). An id the codec does not know is looked up
    in the schema registry when there is one (runtime/schema_ids.py)."""
    try:
        value = _decode(record.value, expected)
    except DecodeError as error:
        skip(record.topic, record.partition, record.offset, error.reason, str(error))
        return None
    if check is not None:
        try:
            check(value)
        except Exception as error:  # any failure of the check is the record's, not ours
            skip(
                record.topic,
                record.partition,
                record.offset,
                INVALID,
                f"{type(error).__name__}: {error}",
            )
            return None
    return value
