"""Alpha Vantage's GLOBAL_QUOTE as the provider ``alphavantage`` (needs an API key).

The free tier allows 25 requests a day and 5 a minute, so one symbol is asked for every
57.6 minutes. GLOBAL_QUOTE carries no time of day, so a tick's event time is its ingest
time. A quota note (``Note``/``Information``) in a 200 answer is a rate limit.
"""

from __future__ import annotations

from typing import Any

from ingest.providers.keyed_http import (
    KeyedQuoteProvider,
    NoData,
    QuotaExceeded,
    Unauthorized,
    number,
)
from schemas import RawTick


class AlphaVantageProvider(KeyedQuoteProvider):
    """Equity and ETF quotes from Alpha Vantage."""

    base_url = "https://www.alphavantage.co"
    per_minute = 5
    per_day = 25

    def params(self, symbol: str) -> tuple[str, dict[str, str]]:
        """``/query?function=GLOBAL_QUOTE&symbol=...``."""
        return "/query", {"function": "GLOBAL_QUOTE", "symbol": symbol}

    def parse(self, symbol: str, body: Any, seq: int, ts_ingest: int) -> RawTick:
        """The ``Global Quote`` object as a QUOTE tick."""
        if not isinstance(body, dict):
            raise ValueError("Alpha Vantage answered with something other than an object")
        for key in ("Note", "Information"):
            if key in body:
                text = str(body[key])
                if "api key" in text.lower() and "invalid" in text.lower():
                    raise Unauthorized(text[:200])
                raise QuotaExceeded(text[:200])
        if "Error Message" in body:
            raise NoData(f"{symbol}: {str(body['Error Message'])[:150]}")
        quote = body.get("Global Quote") or {}
        price = number(quote, "05. price")
        if price is None or price <= 0:
            raise NoData(f"Alpha Vantage has no quote for {symbol}")
        return RawTick(
            symbol,
            self.name,
            "QUOTE",
            ts_ingest,
            ts_ingest,
            seq,
            price,
            volume=number(quote, "06. volume"),
            reference_price=number(quote, "08. previous close"),
        )
