"""Yahoo Finance news as yfinance returns it (``Ticker.get_news``) to raw news items.

yfinance returns the items of Yahoo's ``xhr/ncp`` stream unchanged (it drops only ads):
``{"id", "content": {title, summary, description, pubDate, provider.displayName,
canonicalUrl, clickThroughUrl, ...}}``. They carry no symbols: the story is about the ticker
asked for. ``canonicalUrl`` is the publisher's address (``clickThroughUrl``, Yahoo's copy,
may be null), so it is the item's URL; ``pubDate`` is ISO 8601 in UTC.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ingest.news.normalize import Draft, Parsed, Skip, build, iso_utc_micros, obj, parse_items
from schemas.news import NewsItem

PROVIDER = "yfinance"


def parse_stream(items: Any, symbols: Sequence[str], ts_ingest: int) -> Parsed:
    """The raw items of one ``get_news`` answer for the ticker of canonical ``symbols``."""

    def parse_one(item: Mapping[str, Any], dropped: Counter[str]) -> NewsItem:
        content = obj(item.get("content"))
        if not content:
            raise Skip("malformed")
        link = next(
            (
                obj(content.get(key)).get("url")
                for key in ("canonicalUrl", "clickThroughUrl")
                if obj(content.get(key)).get("url")
            ),
            content.get("previewUrl"),
        )
        return build(
            Draft(
                PROVIDER,
                content.get("title"),
                link,
                iso_utc_micros(content.get("pubDate") or content.get("displayTime")),
                symbols,
                summary=content.get("summary") or content.get("description"),
                publisher=obj(content.get("provider")).get("displayName"),
                language=obj(content.get("canonicalUrl")).get("lang"),
            ),
            ts_ingest,
            dropped,
        )

    return parse_items(items, parse_one)
