"""REST history: GET /v1/candles/{symbol} and GET /v1/quotes/{symbol}, paged from the log.

A page holds up to ``limit`` records in event-time order. Its ``next_cursor`` is where each
partition's reading stopped (offsets, base64 JSON), so the next page continues the same
merge exactly: no record is repeated or skipped between pages.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from fiml.replay import Replay, ReplayError
from fiml.settings import Settings
from gateway.items import candle_item, quote_item
from gateway.messages import OhlcvItem, QuoteItem
from gateway.protocol import Timeframe
from gateway.security import api_key_accepted
from schemas.records import datetime_to_micros
from schemas.symbols import InvalidSymbol, canonical_symbol

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

Start = Annotated[datetime, Query(description="ISO 8601 event time of the first record.")]
End = Annotated[datetime | None, Query(description="ISO 8601 event time of the last record "
                                                   "(inclusive), not in the future; default "
                                                   "now (an empty page for a start still to "
                                                   "come).")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Records per page.")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]
ClosedOnly = Annotated[bool, Query(description="Only closed candles: the final record of "
                                               "each bucket, no intermediate revisions.")]


class CandlePage(BaseModel):
    """One page of candles, oldest first; every revision of a bucket as it was written, or
    only the closed ones."""

    symbol: str
    timeframe: Timeframe
    items: list[OhlcvItem]
    next_cursor: str | None


class QuotePage(BaseModel):
    """One page of arbitrated quotes, oldest first."""

    symbol: str
    items: list[QuoteItem]
    next_cursor: str | None


def encode_cursor(positions: dict[int, int]) -> str:
    """Partition offsets as an opaque cursor."""
    return base64.urlsafe_b64encode(orjson.dumps({str(p): o for p, o in positions.items()}
                                                 )).decode()


def decode_cursor(cursor: str | None) -> dict[int, int]:
    """The partition offsets of a cursor; ValueError if it is not one of ours."""
    if cursor is None:
        return {}
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return {int(p): int(o) for p, o in raw.items()}
    except (binascii.Error, orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise ValueError("the cursor is not one this server made") from None


def _micros(moment: datetime) -> int:
    return datetime_to_micros(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


async def read_page(settings: Settings, stream: str, symbol: str, start: datetime,
                    end: datetime | None, limit: int, cursor: str | None,
                    build: Callable[[Any], dict[str, object]], timeframe: str | None = None,
                    keep: Callable[[Any], bool] | None = None,
                    ) -> tuple[list[dict[str, object]], str | None]:
    """Up to ``limit`` items from ``cursor`` on (only records ``keep`` accepts, if given), and
    the cursor of the next page if any."""
    after = decode_cursor(cursor)
    start_us, end_us = _micros(start), _micros(end or datetime.now(UTC))
    if end is None and start_us > end_us:
        return [], None
    items: list[dict[str, object]] = []
    positions = dict(after)
    async with Replay(settings, stream, [symbol], start_us, end_us, timeframe=timeframe,
                      after=after, batch=min(limit + 1, 1000)) as replay:
        async for item in replay.records():
            if keep is not None and not keep(item.record):
                positions[item.partition] = item.offset + 1
                continue
            if len(items) == limit:
                return items, encode_cursor(positions)
            items.append(build(item.record))
            positions[item.partition] = item.offset + 1
    return items, None


def _is_closed(candle: Any) -> bool:
    return candle.is_closed


def history_router(settings: Settings) -> APIRouter:
    """The /v1 history endpoints of this configuration."""
    router = APIRouter(prefix="/v1", tags=["history"])

    async def page(request: Request, stream: str, symbol: str, start: datetime,
                   end: datetime | None, limit: int, cursor: str | None,
                   build: Callable[[Any], dict[str, object]], timeframe: str | None = None,
                   keep: Callable[[Any], bool] | None = None) -> tuple[str, list, str | None]:
        if not api_key_accepted(settings, request):
            raise HTTPException(401, "a valid API key is required")
        try:
            canonical = canonical_symbol(symbol)
            items, next_cursor = await read_page(settings, stream, canonical, start, end, limit,
                                                 cursor, build, timeframe, keep)
        except (InvalidSymbol, ReplayError, ValueError) as error:
            raise HTTPException(400, str(error)) from None
        return canonical, items, next_cursor

    @router.get("/candles/{symbol:path}", response_model=CandlePage)
    async def candles(request: Request, symbol: str, start: Start, end: End = None,
                      timeframe: Timeframe = "1m", limit: Limit = DEFAULT_LIMIT,
                      cursor: Cursor = None, closed: ClosedOnly = False) -> dict[str, object]:
        """Candles of one symbol and timeframe by open time, from fiml.candles."""
        keep = _is_closed if closed else None
        canonical, items, next_cursor = await page(request, "candles", symbol, start, end, limit,
                                                   cursor, candle_item, timeframe, keep)
        return {"symbol": canonical, "timeframe": timeframe, "items": items,
                "next_cursor": next_cursor}

    @router.get("/quotes/{symbol:path}", response_model=QuotePage)
    async def quotes(request: Request, symbol: str, start: Start, end: End = None,
                     limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, object]:
        """Arbitrated quotes of one symbol by event time, from fiml.quotes."""
        canonical, items, next_cursor = await page(request, "quotes", symbol, start, end, limit,
                                                   cursor, quote_item)
        return {"symbol": canonical, "items": items, "next_cursor": next_cursor}

    return router
