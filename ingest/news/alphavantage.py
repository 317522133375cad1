"""Alpha Vantage's ``NEWS_SENTIMENT`` to raw news items with sentiment.

The answer is ``{"items": "50", ..., "feed": [...]}``; an item has ``title, url,
time_published`` (``20240719T123000``, UTC), ``summary, source``, a numeric
``overall_sentiment_score`` and ``ticker_sentiment: [{ticker, relevance_score,
ticker_sentiment_score}]`` whose scores are strings. Tickers are ``AAPL``, ``CRYPTO:BTC`` or
``FOREX:EUR``; the prefixed ones become the served pairs of that base (``symbol_map``) or are
dropped. The labels (``Somewhat-Bullish``) are left out: they are the score's bands.
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
    compact_utc_micros,
    map_ticker,
    obj,
    parse_items,
    score,
)
from schemas.news import NewsItem

PROVIDER = "alphavantage"


def request(tickers: Sequence[str], limit: int) -> tuple[str, dict[str, str]]:
    """Path and query (without the key): the latest stories that mention all of ``tickers``."""
    return "/query", {
        "function": "NEWS_SENTIMENT",
        "tickers": ",".join(tickers),
        "sort": "LATEST",
        "limit": str(limit),
    }


def refusal(body: Any) -> tuple[str, str] | None:
    """``(kind, text)`` when the answer is a refusal: ``unauthorized`` for a key said to be
    invalid, ``rate_limited`` for another ``Note``/``Information``, ``missing_market`` for an
    ``Error Message``; None for an answer with a feed."""
    answer = obj(body)
    for key in ("Note", "Information"):
        if key in answer:
            note = str(answer[key])[:200]
            invalid_key = "api key" in note.lower() and "invalid" in note.lower()
            return ("unauthorized" if invalid_key else "rate_limited"), note
    if "Error Message" in answer:
        return "missing_market", str(answer["Error Message"])[:200]
    return None


def parse_feed(
    body: Any, requested: Sequence[str], symbol_map: SymbolMap, ts_ingest: int
) -> Parsed:
    """The raw items of one answer; every item is also about the ``requested`` symbols."""

    def parse_one(entry: Mapping[str, Any], dropped: Counter[str]) -> NewsItem:
        symbols = set(requested)
        sentiment: dict[str, float] = {}
        relevance: dict[str, float] = {}
        mentions = entry.get("ticker_sentiment")
        for mention in map(obj, mentions if isinstance(mentions, list) else []):
            mapped = map_ticker(mention.get("ticker"), symbol_map, True)
            given = score(mention.get("ticker_sentiment_score"), -1.0, 1.0)
            weight = score(mention.get("relevance_score"), 0.0, 1.0)
            if not mapped:
                dropped["ticker"] += 1
                continue
            if given is None:
                dropped["sentiment"] += 1
            if weight is None:
                dropped["relevance"] += 1
            for symbol in mapped:
                symbols.add(symbol)
                if given is not None:
                    sentiment.setdefault(symbol, given)
                if weight is not None:
                    relevance.setdefault(symbol, weight)
        overall = score(entry.get("overall_sentiment_score"), -1.0, 1.0)
        if overall is None and entry.get("overall_sentiment_score") is not None:
            dropped["sentiment"] += 1
        return build(
            Draft(
                PROVIDER,
                entry.get("title"),
                entry.get("url"),
                compact_utc_micros(entry.get("time_published")),
                symbols,
                summary=entry.get("summary"),
                publisher=entry.get("source"),
                sentiment=overall,
                symbol_sentiment=sentiment,
                symbol_relevance=relevance,
            ),
            ts_ingest,
            dropped,
        )

    return parse_items(obj(body).get("feed"), parse_one)
