"""Candle revisions folded to one row per bucket (gateway/buckets.py), on revisions written
the way the engine writes them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.buckets import BucketPage
from schemas.records import Candle
from tests.factories import SECOND, candle


def revision(bucket: int, number: int, closed: bool) -> Candle:
    """Revision ``number`` of the 1s candle of bucket ``bucket`` (seconds since the epoch)."""
    return candle(
        timeframe="1s",
        open_time=bucket * SECOND,
        open=1.0,
        high=1.0 + number,
        low=1.0,
        close=1.0 + number,
        volume=0.0,
        is_closed=closed,
        revision=number,
        seq=bucket * 100 + number,
    )


@st.composite
def engine_logs(draw) -> tuple[list[Candle], dict[int, Candle]]:
    """Revisions of consecutive buckets as the engine writes them: each bucket's in order,
    buckets closed in open-time order, a few buckets forming at once; the last ones may be
    still open. Returns the log and the latest revision of every bucket."""
    buckets = draw(st.integers(1, 12))
    counts = [draw(st.integers(1, 4)) for _ in range(buckets)]
    still_open = draw(st.integers(0, min(2, buckets)))
    pending = {b: 0 for b in range(buckets)}
    log: list[Candle] = []
    latest: dict[int, Candle] = {}
    next_to_close = 0
    while pending:
        moves = [b for b in pending if pending[b] < counts[b]]
        closable = (
            next_to_close < buckets - still_open
            and next_to_close in pending
            and pending[next_to_close] == counts[next_to_close]
        )
        if closable and (not moves or draw(st.booleans())):
            bucket = next_to_close
            next_to_close += 1
            record = revision(bucket, counts[bucket] + 1, closed=True)
            del pending[bucket]
        elif moves:
            bucket = draw(st.sampled_from(sorted(moves)[:3]))
            pending[bucket] += 1
            record = revision(bucket, pending[bucket], closed=False)
        else:
            break
        log.append(record)
        latest[bucket] = record
    return log, latest


def read_pages(log: list[Candle], limit: int) -> list[list[Candle]]:
    """Pages over ``log`` as ``read_buckets`` reads them, each resuming where the last one
    said."""
    pages, start, after = [], 0, None
    while True:
        page = BucketPage(limit, after)
        full = (
            any(page.add(log[offset], 0, offset) for offset in range(start, len(log)))
            or page.finish()
        )
        pages.append(page.rows)
        if not full:
            return pages
        start, after = page.resume_offsets().get(0, len(log)), page.after


@settings(max_examples=300)
@given(engine_logs(), st.integers(1, 5))
def test_one_row_per_bucket_its_latest_revision_in_open_time_order_across_pages(logged, limit):
    log, latest = logged
    pages = read_pages(log, limit)
    assert [row for page in pages for row in page] == [latest[b] for b in sorted(latest)]
    assert all(len(page) == limit for page in pages[:-1])


def test_a_bucket_is_held_until_closed_then_released_with_earlier_ones():
    page = BucketPage(limit=10)
    assert not page.add(revision(0, 1, False), 0, 10)
    assert not page.add(revision(1, 1, False), 0, 11)
    assert not page.add(revision(0, 2, False), 0, 12)
    assert page.rows == [] and page.resume_offsets() == {0: 10}
    assert not page.add(revision(0, 3, True), 0, 13)
    assert page.rows == [revision(0, 3, True)] and page.resume_offsets() == {0: 11}
    assert not page.add(revision(0, 4, True), 0, 14) and len(page.rows) == 1, (
        "a released bucket is not taken again"
    )
    assert not page.finish() and page.rows[-1] == revision(1, 1, False)
