"""REST history: GET /v1/candles/{symbol} and GET /v1/quotes/{symbol}, paged from the log
(``gateway/history.py``) and behind the API key when one is set."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from gateway.admission import Slots
from gateway.history import Answer, Item, Page, history_request, read_buckets, read_page
from gateway.items import candle_item, quote_item
from gateway.messages import OhlcvItem, QuoteItem
from gateway.protocol import Timeframe
from gateway.security import api_key_dependency
from runtime.readers import ReaderPool
from runtime.replay_request import ReplayError
from runtime.settings import Settings
from schemas.records import Candle
from schemas.symbols import InvalidSymbol, canonical_symbol

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


def _is_closed(candle: Candle) -> bool:
    return candle.is_closed


@contextlib.contextmanager
def history_slot(running: Slots) -> Iterator[None]:
    """Hold one of ``running``'s slots while a request reads the log; HTTP 429 if none is
    free."""
    if not running.take():
        raise HTTPException(
            429,
            f"{running.limit} history requests already run; retry later",
            headers={"Retry-After": "1"},
        )
    try:
        yield
    finally:
        running.give()


def history_router(settings: Settings, running: Slots, readers: ReaderPool) -> APIRouter:
    """The /v1 history endpoints of this configuration; at most ``running`` requests read
    at once (with the consumers of ``readers``), others are answered 429."""
    router = APIRouter(
        prefix="/v1", tags=["history"], dependencies=[Depends(api_key_dependency(settings))]
    )

    async def answer(
        symbol: str, read: Callable[[str], Awaitable[Answer]]
    ) -> tuple[str, list[Item], str | None]:
        """The canonical symbol and ``read(symbol)``, bad requests answered 400."""
        with history_slot(running):
            try:
                canonical = canonical_symbol(symbol)
                items, next_cursor = await read(canonical)
            except (InvalidSymbol, ReplayError, ValueError) as error:
                raise HTTPException(400, str(error)) from None
        return canonical, items, next_cursor

    @router.get("/candles/{symbol:path}", response_model=CandlePage)
    async def candles(
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

        def read(canonical: str) -> Awaitable[Answer]:
            page = Page(history_request("candles", canonical, start, end, timeframe), limit, cursor)
            if closed or revisions:
                return read_page(
                    settings, readers, page, candle_item, _is_closed if closed else None
                )
            return read_buckets(settings, readers, page)

        canonical, items, next_cursor = await answer(symbol, read)
        return {
            "symbol": canonical,
            "timeframe": timeframe,
            "items": items,
            "next_cursor": next_cursor,
        }

    @router.get("/quotes/{symbol:path}", response_model=QuotePage)
    async def quotes(
        symbol: str,
        start: Start,
        end: End = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, object]:
        """Arbitrated quotes of one symbol by event time, from fiml.quotes."""
        canonical, items, next_cursor = await answer(
            symbol,
            lambda canonical: read_page(
                settings,
                readers,
                Page(history_request("quotes", canonical, start, end), limit, cursor),
                quote_item,
            ),
        )
        return {"symbol": canonical, "items": items, "next_cursor": next_cursor}

    return router
