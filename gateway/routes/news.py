"""GET /v1/news: the stories the gateway keeps of some symbols since a start, paged
(``gateway/news_store.py``), behind the API key when one is set."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from gateway.messages import NewsEntry
from gateway.news_store import NewsStore
from gateway.protocol import MAX_SYMBOLS
from gateway.security import api_key_dependency
from runtime.clock import now_micros
from runtime.settings import Settings
from schemas.symbols import InvalidSymbol, canonical_symbol
from schemas.times import as_utc, datetime_to_micros

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class NewsPage(BaseModel):
    """One page of stories, oldest published first; a story about several of the symbols
    asked for comes once per symbol."""

    symbols: list[str]
    items: list[NewsEntry]
    next_cursor: str | None


def news_router(settings: Settings, news: NewsStore) -> APIRouter:
    """The /v1/news endpoint of this configuration."""
    router = APIRouter(
        prefix="/v1", tags=["news"], dependencies=[Depends(api_key_dependency(settings))]
    )

    @router.get("/news", response_model=NewsPage)
    async def news_page(
        symbols: Annotated[str, Query(description=f"Comma-separated, at most {MAX_SYMBOLS}.")],
        start: Annotated[datetime, Query(description="ISO 8601: published at or after.")],
        end: Annotated[
            datetime | None, Query(description="ISO 8601: published at or before; default now.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Stories per page.")] = (
            DEFAULT_LIMIT
        ),
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = (
            None
        ),
    ) -> dict[str, object]:
        """Stories of ``symbols`` published from ``start`` to ``end``, of the latest the
        gateway keeps per symbol (``NEWS_KEPT``, 500)."""
        try:
            wanted = list(dict.fromkeys(canonical_symbol(s) for s in symbols.split(",") if s))
            if not wanted or len(wanted) > MAX_SYMBOLS:
                raise ValueError(f"give 1 to {MAX_SYMBOLS} symbols")
            start_us = datetime_to_micros(as_utc(start))
            end_us = now_micros() if end is None else datetime_to_micros(as_utc(end))
            if end_us < start_us:
                raise ValueError("end is before start")
            items, next_cursor = news.page(wanted, start_us, end_us, limit, cursor)
        except (InvalidSymbol, ValueError) as error:
            raise HTTPException(400, str(error)) from None
        return {"symbols": wanted, "items": items, "next_cursor": next_cursor}

    return router
