"""Times in records and on the wire: microseconds since the epoch and ISO 8601, UTC.

Records hold times as integers, microseconds since the Unix epoch, UTC. Clients see them as
ISO 8601 UTC with six decimals and a ``Z`` (``2025-11-22T10:30:01.250000Z``). A time given
without a zone is UTC. Pure: nothing here reads the clock (``runtime.clock`` does).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


SECOND = 1_000_000
TIMEFRAMES: dict[str, int] = {
    "1s": SECOND,
    "1m": 60 * SECOND,
    "5m": 300 * SECOND,
    "15m": 900 * SECOND,
    "1h": 3600 * SECOND,
    "1d": 86_400 * SECOND,
}
"""Candle timeframes by name: the length of their UTC-aligned buckets in microseconds."""


def as_utc(moment: datetime) -> datetime:
    """``moment``, read as UTC if it has no zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time (UTC unless it says otherwise); ValueError if it is none."""
    return as_utc(datetime.fromisoformat(text))


def datetime_to_iso(moment: datetime) -> str:
    """The wire form of a UTC datetime, e.g. ``2025-11-22T10:30:01.250000Z``."""
    return moment.strftime(ISO_FORMAT)


def micros_to_iso(micros: int) -> str:
    """Format microseconds since the epoch as ISO 8601 UTC, e.g. ``2025-11-22T10:30:01.250000Z``."""
    return datetime_to_iso(EPOCH + timedelta(microseconds=micros))


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return micros_to_iso(seconds * 1_000_000)[:-7]


def fast_micros_to_iso(micros: int) -> str:
    """``micros_to_iso(micros)``, five times faster: each second is formatted once."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_second(seconds)}{fraction:06d}Z"


def datetime_to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# The times a date can show (years 1 to 9999): what micros_to_iso and any Avro reader's
# timestamp-micros can turn into a date.
FIRST_MICROS = datetime_to_micros(datetime(1, 1, 1, tzinfo=UTC))
LAST_MICROS = datetime_to_micros(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))


def check_micros(micros: int) -> None:
    """Raise ValueError unless ``micros`` is a time a date can show."""
    if not FIRST_MICROS <= micros <= LAST_MICROS:
        raise ValueError(f"time {micros} µs since the epoch is no date")
