"""Financial Modeling Prep's news endpoints to raw news items.

``/stable/news/{stock,crypto,forex,press-releases}?symbols=A,B`` answer a list of
``{symbol, publishedDate, publisher, title, image, site, text, url}`` (the legacy
``/api/v3/stock_news`` lacks ``publisher`` and names the publisher in ``site``; press
releases may give ``date`` for ``publishedDate``). ``publishedDate`` has no zone: it is New
York time (a Reuters story at ``2025-09-22 21:31:48`` has a URL dated 2025-09-23, which only
Eastern time explains), see :func:`~ingest.news.normalize.eastern_micros`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ingest.news.normalize import (
    Draft,
    Parsed,
    SymbolMap,
    build,
    eastern_micros,
    map_ticker,
    obj,
    parse_items,
)
from schemas.news import NewsItem

PROVIDER = "fmp"
FEEDS = ("stock", "press-releases", "crypto", "forex")
PLAIN_FEEDS = frozenset({"stock", "press-releases"})


def request(feed: str, tickers: Sequence[str], limit: int) -> tuple[str, dict[str, str]]:
    """Path and query (without the key) of one news request: ``/stable/news/<feed>``."""
    if feed not in FEEDS:
        raise ValueError(f"unknown FMP news feed {feed!r}")
    return f"/stable/news/{feed}", {"symbols": ",".join(tickers), "limit": str(limit)}


def refusal(body: Any) -> str | None:
    """FMP's error text when the answer is a refusal (``{"Error Message": ...}``), else None."""
    message = obj(body).get("Error Message")
    return None if message is None else str(message)[:200]


def parse_news(body: Any, feed: str, symbol_map: SymbolMap, ts_ingest: int) -> Parsed:
    """The raw items of one answer of ``feed``; an item's ``symbol`` is mapped through
    ``symbol_map``, and on the stock and press release feeds any ticker that is a canonical
    symbol is taken as it is; an item without a known symbol is skipped (``no_symbols``)."""
    plain = feed in PLAIN_FEEDS

    def parse_one(entry: Mapping[str, Any], dropped: Counter[str]) -> NewsItem:
        ticker = entry.get("symbol")
        symbols = map_ticker(ticker, symbol_map, plain)
        if ticker is not None and not symbols:
            dropped["ticker"] += 1
        published = eastern_micros(entry.get("publishedDate") or entry.get("date"))
        return build(
            Draft(
                PROVIDER,
                entry.get("title"),
                entry.get("url"),
                published,
                symbols,
                summary=entry.get("text"),
                publisher=entry.get("publisher") or entry.get("site"),
            ),
            ts_ingest,
            dropped,
        )

    return parse_items(body, parse_one)
