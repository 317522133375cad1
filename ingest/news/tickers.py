"""Each provider's news feeds and tickers for the canonical symbols it polls.

Yahoo: ``Ticker(t).news`` for tickers, indices and futures as they are, fiat pairs as
``EURUSD=X`` and crypto pairs as ``BTC-USD`` (Yahoo quotes crypto news against USD). FMP:
stock news and press releases for equity tickers, forex news for fiat pairs (``EURUSD``),
crypto news for crypto pairs (``BTCUSD``). Alpha Vantage: ``NEWS_SENTIMENT`` for equity
tickers, ``CRYPTO:BTC`` and ``FOREX:EUR`` for pairs (by their base). Pairs of one base share
a ticker, so one request serves them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.news.planner import Target
from runtime.catalog import is_fiat_pair


def news_targets(provider: str, symbols: Iterable[str]) -> tuple[Target, ...]:
    """The targets of ``provider`` for ``symbols``, one per feed and ticker."""
    grouped: dict[tuple[str, str], set[str]] = {}
    for symbol in symbols:
        for feed_ticker in _feeds(provider, symbol):
            grouped.setdefault(feed_ticker, set()).add(symbol)
    return tuple(
        Target(feed, ticker, tuple(sorted(served)))
        for (feed, ticker), served in sorted(grouped.items())
    )


def _feeds(provider: str, symbol: str) -> list[tuple[str, str]]:
    base, pair, quote = symbol.partition("/")
    equity = not pair and not symbol.startswith("^") and "=" not in symbol
    fiat = bool(pair) and is_fiat_pair(symbol)
    if provider == "yfinance":
        if not pair:
            return [("news", symbol)]
        return [("news", f"{base}{quote}=X" if fiat else f"{base}-USD")]
    if provider == "fmp":
        if equity:
            return [("stock", symbol), ("press-releases", symbol)]
        if pair:
            return [("forex", f"{base}{quote}") if fiat else ("crypto", f"{base}USD")]
    if provider == "alphavantage":
        if equity:
            return [("news", symbol)]
        if pair:
            return [("news", f"FOREX:{base}" if fiat else f"CRYPTO:{base}")]
    return []
