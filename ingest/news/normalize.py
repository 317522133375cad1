"""What every news parser shares: skip reasons, limits, provider times and the item builder.

A parser turns each item of a provider's response into a :class:`NewsItem` or skips it with
one reason (:class:`Skip`), so that a malformed or partial item never ends a poll; a value
left out of a kept item (a sentiment that is no number) is counted as dropped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.news import MAX_URL_LENGTH, NewsItem, canonical_url, story_id
from schemas.symbols import InvalidSymbol, canonical_symbol
from schemas.times import datetime_to_micros

MICROS = 1_000_000
MAX_HEADLINE = 500
MAX_SUMMARY = 4000
MAX_NAME = 200
MAX_LANGUAGE = 35  # the longest BCP 47 tag a reader must accept
MAX_SYMBOLS = 50
EARLIEST_US = 946_684_800 * MICROS  # 2000-01-01: a news time before it is a bad time
FUTURE_TOLERANCE_US = 86_400 * MICROS
EASTERN = ZoneInfo("America/New_York")

SymbolMap = Mapping[str, Sequence[str]]


class Skip(Exception):
    """An item left out; the message is the reason, e.g. ``no_url`` or ``bad_time``."""


@dataclass
class Parsed:
    """The items of one response, and how many were skipped or lost a value, by reason."""

    items: list[NewsItem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)


def parse_items(
    entries: Any, parse_one: Callable[[Mapping[str, Any], Counter[str]], NewsItem]
) -> Parsed:
    """Run ``parse_one`` on every entry that is an object (others are skipped as
    ``not_an_object``); a :class:`Skip` or a value of the wrong shape skips that entry alone
    (reason ``malformed`` for the latter)."""
    parsed = Parsed()
    if not isinstance(entries, list):
        raise ValueError(f"expected a list of news items, got {type(entries).__name__}")
    for entry in entries:
        if not isinstance(entry, Mapping):
            parsed.skipped["not_an_object"] += 1
            continue
        try:
            parsed.items.append(parse_one(entry, parsed.dropped))
        except Skip as skip:
            parsed.skipped[str(skip)] += 1
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
            parsed.skipped["malformed"] += 1
    return parsed


def obj(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def text(value: Any, limit: int) -> str | None:
    """A string with its whitespace runs made single spaces, cut to ``limit``; None if empty."""
    if not isinstance(value, str):
        return None
    cleaned = " ".join(value.split())[:limit].strip()
    return cleaned or None


def score(value: Any, low: float, high: float) -> float | None:
    """A number (or a numeric string) within ``[low, high]``, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def iso_utc_micros(value: Any) -> int:
    """An ISO 8601 time with a zone (``2026-09-17T10:04:00Z``); raises Skip without one."""
    moment = _parse(value, datetime.fromisoformat)
    if moment.tzinfo is None:
        raise Skip("bad_time")
    return datetime_to_micros(moment)


def compact_utc_micros(value: Any) -> int:
    """Alpha Vantage's ``20240719T123000`` (or without seconds), which is UTC."""
    if not isinstance(value, str):
        raise Skip("bad_time")
    layout = "%Y%m%dT%H%M%S" if len(value) == 15 else "%Y%m%dT%H%M"
    moment = _parse(value, lambda v: datetime.strptime(v, layout))
    return datetime_to_micros(moment.replace(tzinfo=UTC))


def eastern_micros(value: Any) -> int:
    """FMP's ``2025-09-22 21:31:48``, a New York wall time (EST or EDT by the date; a time
    repeated when clocks go back is the first, EDT); a time with a zone is taken as such."""
    moment = _parse(value, datetime.fromisoformat)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=EASTERN, fold=0)
    return datetime_to_micros(moment)


def _parse(value: Any, parse: Callable[[str], datetime]) -> datetime:
    if not isinstance(value, str):
        raise Skip("bad_time")
    try:
        return parse(value.strip())
    except ValueError:
        raise Skip("bad_time") from None


def map_ticker(ticker: Any, symbol_map: SymbolMap, plain: bool) -> tuple[str, ...]:
    """The canonical symbols of a provider's ticker: those ``symbol_map`` (the served symbols
    in the provider's form) gives it, else, where ``plain``, the ticker itself if it is a
    canonical symbol as written (``AAPL``; never ``CRYPTO:BTC``); () for none."""
    if not isinstance(ticker, str):
        return ()
    known = symbol_map.get(ticker)
    if known:
        return tuple(known)
    if not plain or ":" in ticker:
        return ()
    try:
        return (canonical_symbol(ticker),)
    except InvalidSymbol:
        return ()


@dataclass(frozen=True)
class Draft:
    """A provider's item as its parser read it, before the checks :func:`build` makes."""

    provider: str
    headline: Any
    url: Any
    published_us: int
    symbols: Iterable[str]
    summary: Any = None
    publisher: Any = None
    sentiment: float | None = None
    symbol_sentiment: Mapping[str, float] = field(default_factory=dict)
    symbol_relevance: Mapping[str, float] = field(default_factory=dict)
    language: Any = None


def build(draft: Draft, ts_ingest: int, dropped: Counter[str]) -> NewsItem:
    """The raw record of a draft; raises Skip when it has no headline, no usable URL, a time
    before 2000 or more than a day after ``ts_ingest``, or no symbol."""
    headline = text(draft.headline, MAX_HEADLINE)
    if headline is None:
        raise Skip("no_headline")
    url = text(draft.url, MAX_URL_LENGTH + 1)
    canonical = canonical_url(url) if url else None
    if url is None or canonical is None:
        raise Skip("no_url" if url is None else "bad_url")
    if draft.published_us < EARLIEST_US:
        raise Skip("bad_time")
    if draft.published_us > ts_ingest + FUTURE_TOLERANCE_US:
        raise Skip("future_time")
    symbols = sorted(set(draft.symbols))
    if not symbols:
        raise Skip("no_symbols")
    if len(symbols) > MAX_SYMBOLS:
        dropped["symbol"] += len(symbols) - MAX_SYMBOLS
        symbols = symbols[:MAX_SYMBOLS]
    kept = set(symbols)
    return NewsItem(
        story_id(canonical),
        headline,
        text(draft.summary, MAX_SUMMARY),
        url,
        canonical,
        text(draft.publisher, MAX_NAME),
        draft.published_us,
        ts_ingest,
        [draft.provider],
        symbols,
        draft.sentiment,
        {s: v for s, v in sorted(draft.symbol_sentiment.items()) if s in kept},
        {s: v for s, v in sorted(draft.symbol_relevance.items()) if s in kept},
        text(draft.language, MAX_LANGUAGE),
    )
