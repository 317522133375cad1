"""Builders of the news tests: recorded payloads, raw items and the reader's fold."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ingest.news.normalize import Draft, build
from schemas.news import NewsItem
from schemas.times import datetime_to_micros
from tests.ccxt_http import fixture


def recorded(name: str) -> Any:
    """The provider's body in ``tests/fixtures/news/<name>``."""
    return json.loads(fixture(f"news/{name}"))["response"]


def utc_us(*parts: int) -> int:
    """Microseconds of a UTC date and time given as ``year, month, day[, hour, ...]``."""
    return datetime_to_micros(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


def raw(
    provider: str,
    headline: str,
    url: str,
    published_us: int,
    symbols: Sequence[str],
    ts_ingest: int | None = None,
    **optional: Any,
) -> NewsItem:
    """A raw item as the parsers build it (canonical URL and id included)."""
    ingest = published_us + 60_000_000 if ts_ingest is None else ts_ingest
    return build(
        Draft(provider, headline, url, published_us, symbols, **optional), ingest, Counter()
    )


def fold(outputs: Iterable[NewsItem | None]) -> dict[str, NewsItem]:
    """What a reader of the news topic holds after ``outputs``: the latest item per id, the
    ids an item replaces dropped."""
    held: dict[str, NewsItem] = {}
    for item in outputs:
        if item is None:
            continue
        for old in item.replaces:
            held.pop(old, None)
        held[item.id] = item
    return held
