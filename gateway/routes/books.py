"""``GET /v1/books/{symbol}``: the current order book of a symbol, consolidated or of one
venue, as an orderbook snapshot message; behind the API key when one is set."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from domain.books.protocol import CONSOLIDATED, DEPTHS, BookPublisher
from gateway.books import BookStore
from gateway.messages import BookItem
from gateway.protocol import VENUE_PATTERN
from gateway.security import api_key_dependency
from runtime.settings import Settings
from schemas.symbols import InvalidSymbol, canonical_symbol

Depth = Annotated[int, Query(description="Levels per side: 10, 25 or 50.")]
Venue = Annotated[
    str,
    Query(pattern=VENUE_PATTERN, description="A provider's name, or consolidated (default)."),
]


def books_router(settings: Settings, books: BookStore) -> APIRouter:
    """``GET /v1/books/{symbol}``."""
    router = APIRouter(dependencies=[Depends(api_key_dependency(settings))])

    @router.get("/v1/books/{symbol:path}", response_model=BookItem, tags=["books"])
    async def book(symbol: str, depth: Depth = 10, venue: Venue = CONSOLIDATED) -> dict[str, Any]:
        """The latest book of fiml.books.consolidated for the symbol (a venue's book is its
        levels there), as the snapshot an orderbook subscription starts with: 404 before
        the first."""
        if depth not in DEPTHS:
            raise HTTPException(422, "depth must be 10, 25 or 50")
        try:
            canonical = canonical_symbol(symbol)
        except InvalidSymbol as error:
            raise HTTPException(400, str(error)) from None
        view = books.view(canonical, venue)
        if view is None:
            raise HTTPException(404, f"no order book of {canonical} yet")
        message = BookPublisher(depth).publish(view)
        assert message is not None, "a first message is always a snapshot"
        return message

    return router
