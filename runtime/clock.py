"""The wall clock: for ingest times, checking requests and frame timestamps, never for
derived records (they depend on the log alone)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from schemas.times import datetime_to_iso


def now_micros() -> int:
    """Now, in microseconds since the epoch."""
    return time.time_ns() // 1000


def now_iso() -> str:
    """Now, in the wire form of times (``schemas/times.py``)."""
    return datetime_to_iso(datetime.now(UTC))
