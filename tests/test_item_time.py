"""``fast_micros_to_iso``, the data messages' timestamp, formats exactly as ``micros_to_iso``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.times import fast_micros_to_iso, micros_to_iso

FIRST_US = -62_135_596_800_000_000
LAST_US = 253_402_300_799_999_999


@given(st.integers(min_value=FIRST_US, max_value=LAST_US))
def test_item_time_is_micros_to_iso(micros: int) -> None:
    assert fast_micros_to_iso(micros) == micros_to_iso(micros)
