"""REST history: GET /v1/candles/{symbol} and GET /v1/quotes/{symbol}, paged from the log.

A page holds up to ``limit`` records in event-time order. Its ``next_cursor`` is where each
partition's reading stopped (offsets, base64 JSON), so the next page continues the same
merge exactly: no record is repeated or skipped between pages. Candles come one row per
bucket by default (its latest revision, ``gateway/buckets.py``): their cursor also names the
last bucket returned and resumes at the first revision of every bucket not returned yet.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from gateway.buckets import BucketPage
from gateway.items import candle_item, quote_item
from gateway.messages import OhlcvItem, QuoteItem
from gateway.protocol import Timeframe
from gateway.security import api_key_accepted
from runtime.clock import now_micros
from runtime.replay import Replay
from runtime.replay_request import ReplayError, ReplayRequest
from runtime.settings import Settings
from schemas.records import Candle
from schemas.symbols import InvalidSymbol, canonical_symbol
from schemas.times import as_utc, datetime_to_micros

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

Start = Annotated[datetime, Query(description="ISO 8601 event time of the first record.")]
End = Annotated[
    datetime | None,
    Query(
        description="ISO 8601 event time of the last record "
        "(inclusive), not in the future; default "
        "now (an empty page for a start still to "
        "come)."
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Records per page.")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]
ClosedOnly = Annotated[
    bool, Query(description="Only closed candles: the final record of each bucket.")
]
Revisions = Annotated[
    bool,
    Query(
        description="Every revision of each bucket as it was "
        "written, instead of one row per bucket."
    ),
]


class CandlePage(BaseModel):
    """One page of candles by open time: one per bucket (its latest revision), every
    revision as it was written, or only the closed ones."""

    symbol: str
    timeframe: Timeframe
    items: list[OhlcvItem]
    next_cursor: str | None


class QuotePage(BaseModel):
    """One page of arbitrated quotes, oldest first."""

    symbol: str
    items: list[QuoteItem]
    next_cursor: str | None


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


def _replay(settings: Settings, page: Page, positions: dict[int, int]) -> Replay | None:
    """The replay a page reads, or None for a range that has not begun yet."""
    if page.request is None:
        return None
    return Replay(settings, page.request, after=positions, batch=min(page.limit + 1, 1000))


async def read_page(
    settings: Settings,
    page: Page,
    build: Callable[[Any], dict[str, object]],
    keep: Callable[[Any], bool] | None = None,
) -> tuple[list[dict[str, object]], str | None]:
    """Up to ``page.limit`` items from its cursor on (only records ``keep`` accepts, if
    given), and the cursor of the next page if any."""
    after, _ = decode_cursor(page.cursor)
    replay = _replay(settings, page, after)
    if replay is None:
        return [], None
    items: list[dict[str, object]] = []
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
    return items, None


async def read_buckets(
    settings: Settings, page: Page
) -> tuple[list[dict[str, object]], str | None]:
    """Up to ``page.limit`` candles, one per bucket (its latest revision) in open-time order,
    and the cursor of the next page if any. The cursor resumes at the first revision of every
    bucket not returned yet, so none is cut between pages."""
    after, last_bucket = decode_cursor(page.cursor)
    replay = _replay(settings, page, after)
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
            if not buckets.finish():
                return [candle_item(row) for row in buckets.rows], None
    next_cursor = encode_cursor({**positions, **buckets.resume_offsets()}, buckets.after)
    return [candle_item(row) for row in buckets.rows], next_cursor


def _is_closed(candle: Candle) -> bool:
    return candle.is_closed


def history_router(settings: Settings) -> APIRouter:
    """The /v1 history endpoints of this configuration."""
    router = APIRouter(prefix="/v1", tags=["history"])

    async def answer(
        request: Request,
        symbol: str,
        read: Callable[[str], Awaitable[tuple[list, str | None]]],
    ) -> tuple[str, list, str | None]:
        """The canonical symbol and ``read(symbol)``, with the key checked and bad requests
        answered 400."""
        if not api_key_accepted(settings, request):
            raise HTTPException(401, "a valid API key is required")
        try:
            canonical = canonical_symbol(symbol)
            items, next_cursor = await read(canonical)
        except (InvalidSymbol, ReplayError, ValueError) as error:
            raise HTTPException(400, str(error)) from None
        return canonical, items, next_cursor

    @router.get("/candles/{symbol:path}", response_model=CandlePage)
    async def candles(
        request: Request,
        symbol: str,
        start: Start,
        end: End = None,
        timeframe: Timeframe = "1m",
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        closed: ClosedOnly = False,
        revisions: Revisions = False,
    ) -> dict[str, object]:
        """Candles of one symbol and timeframe by open time, from fiml.candles: one row per
        bucket (its latest revision; ``is_closed`` says whether it is final), every revision
        with ``revisions=true``, closed buckets only with ``closed=true``."""

        def read(canonical: str) -> Awaitable[tuple[list, str | None]]:
            page = Page(history_request("candles", canonical, start, end, timeframe), limit, cursor)
            if closed or revisions:
                return read_page(settings, page, candle_item, _is_closed if closed else None)
            return read_buckets(settings, page)

        canonical, items, next_cursor = await answer(request, symbol, read)
        return {
            "symbol": canonical,
            "timeframe": timeframe,
            "items": items,
            "next_cursor": next_cursor,
        }

    @router.get("/quotes/{symbol:path}", response_model=QuotePage)
    async def quotes(
        request: Request,
        symbol: str,
        start: Start,
        end: End = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, object]:
        """Arbitrated quotes of one symbol by event time, from fiml.quotes."""
        canonical, items, next_cursor = await answer(
            request,
            symbol,
            lambda canonical: read_page(
                settings,
                Page(history_request("quotes", canonical, start, end), limit, cursor),
                quote_item,
            ),
        )
        return {"symbol": canonical, "items": items, "next_cursor": next_cursor}

    return router
