"""Pages of history from the log, for GET /v1/candles/{symbol} and GET /v1/quotes/{symbol}
(``gateway/routes/history.py``).

A page holds up to ``limit`` records in event-time order. Its ``next_cursor`` is where each
partition's reading stopped (offsets, base64 JSON), so the next page continues the same
merge exactly: no record is repeated or skipped between pages. Candles come one row per
bucket by default (its latest revision, ``gateway/buckets.py``): their cursor also names the
last bucket returned and resumes at the first revision of every bucket not returned yet.

A page reads at most ``FIML_MAX_HISTORY_SCAN_RECORDS`` records of its partition and a range
of at most ``FIML_MAX_HISTORY_RANGE_HOURS``: a page whose read was cut there may hold fewer
than ``limit`` items (none at all in a stretch of other symbols' records) and its cursor
goes on from where the read stopped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.buckets import BucketPage
from gateway.items import candle_item
from runtime.clock import now_micros
from runtime.readers import ReaderPool
from runtime.replay import Replay
from runtime.replay_request import ReplayError, ReplayRequest
from runtime.settings import Settings
from schemas.times import as_utc, datetime_to_micros


def encode_cursor(positions: dict[int, int], after: int | None = None) -> str:
    """Partition offsets (and, for candles by bucket, the open time of the last bucket
    returned) as an opaque cursor."""
    state = {"p": {str(p): o for p, o in positions.items()}, "t": after}
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode()


def decode_cursor(cursor: str | None) -> tuple[dict[int, int], int | None]:
    """The partition offsets and last bucket of a cursor; ValueError if it is not ours."""
    if cursor is None:
        return {}, None
    try:
        state = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        after = state["t"]
        if after is not None and type(after) is not int:
            raise TypeError(after)
        return {int(p): int(o) for p, o in state["p"].items()}, after
    except (
        binascii.Error,
        orjson.JSONDecodeError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
    ):
        raise ValueError("the cursor is not one this server made") from None


HOUR_US = 3_600_000_000

# A page as it is answered: its items, and the cursor of the next page (None: no more).
Item = dict[str, object]
Answer = tuple[list[Item], str | None]


@dataclass(frozen=True)
class Page:
    """One page to read: the range (None: it has not begun yet), at most ``limit`` records,
    from where the previous page's ``cursor`` stopped."""

    request: ReplayRequest | None
    limit: int
    cursor: str | None


def history_request(
    stream: str, symbol: str, start: datetime, end: datetime | None, timeframe: str | None = None
) -> ReplayRequest | None:
    """The range of a page (``end`` defaults to now), or None for a range that has not begun
    yet."""
    start_us = datetime_to_micros(as_utc(start))
    end_us = now_micros() if end is None else datetime_to_micros(as_utc(end))
    if end is None and start_us > end_us:
        return None
    return ReplayRequest(stream, (symbol,), start_us, end_us, timeframe)


def check_range(settings: Settings, request: ReplayRequest) -> None:
    """Refuse a range longer than ``FIML_MAX_HISTORY_RANGE_HOURS`` (to now without an end)."""
    check_span(settings, request.start, now_micros() if request.end is None else request.end)


def check_span(settings: Settings, start: int, end: int) -> None:
    """Refuse ``start`` to ``end`` (µs) if longer than ``FIML_MAX_HISTORY_RANGE_HOURS``."""
    hours = settings.max_history_range_hours
    if hours and end - start > hours * HOUR_US:
        raise ReplayError(f"the range is longer than the {hours} hours one request may ask for")


def _replay(
    settings: Settings, readers: ReaderPool, page: Page, positions: dict[int, int]
) -> Replay | None:
    """The replay a page reads, cut after ``FIML_MAX_HISTORY_SCAN_RECORDS``, or None for a
    range that has not begun yet."""
    if page.request is None:
        return None
    replay = Replay(
        settings,
        page.request,
        after=positions,
        batch=min(page.limit + 1, 1000),
        readers=readers,
        scan_limit=settings.max_history_scan_records,
        truncate=True,
    )
    check_range(settings, page.request)  # once the range is known to be one
    return replay


async def read_page(
    settings: Settings,
    readers: ReaderPool,
    page: Page,
    build: Callable[[Any], dict[str, object]],
    keep: Callable[[Any], bool] | None = None,
) -> Answer:
    """Up to ``page.limit`` items from its cursor on (only records ``keep`` accepts, if
    given), and the cursor of the next page if any."""
    after, _ = decode_cursor(page.cursor)
    replay = _replay(settings, readers, page, after)
    if replay is None:
        return [], None
    items: list[Item] = []
    positions = dict(after)
    async with replay:
        async for item in replay.records():
            if keep is not None and not keep(item.record):
                positions[item.partition] = item.offset + 1
                continue
            if len(items) == page.limit:
                return items, encode_cursor(positions)
            items.append(build(item.record))
            positions[item.partition] = item.offset + 1
    return items, encode_cursor({**positions, **replay.cut}) if replay.cut else None


async def read_buckets(settings: Settings, readers: ReaderPool, page: Page) -> Answer:
    """Up to ``page.limit`` candles, one per bucket (its latest revision) in open-time order,
    and the cursor of the next page if any. The cursor resumes at the first revision of every
    bucket not returned yet, so none is cut between pages; a page that would resume where it
    began (a bucket's revisions span more than the records a page may read) is refused."""
    after, last_bucket = decode_cursor(page.cursor)
    replay = _replay(settings, readers, page, after)
    if replay is None:
        return [], None
    buckets = BucketPage(page.limit, last_bucket)
    positions = dict(after)
    async with replay:
        async for item in replay.records():
            if buckets.add(item.record, item.partition, item.offset):
                break
            positions[item.partition] = item.offset + 1
        else:
            if replay.cut:
                positions.update(replay.cut)
            elif not buckets.finish():
                return [candle_item(row) for row in buckets.rows], None
    resume = {**positions, **buckets.resume_offsets()}
    if (resume, buckets.after) == (after, last_bucket):
        raise ReplayError(
            "a candle's revisions span more records than one page may read; "
            "ask for closed=true or revisions=true"
        )
    next_cursor = encode_cursor(resume, buckets.after)
    return [candle_item(row) for row in buckets.rows], next_cursor
