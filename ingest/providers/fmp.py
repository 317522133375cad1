"""Financial Modeling Prep's quote endpoint as the provider ``fmp`` (needs an API key).

The free tier allows 250 requests a day, so one symbol is asked for every 5.76 minutes.
The quote's ``timestamp`` (seconds, UTC) is the event time.
"""

from __future__ import annotations

from typing import Any

from ingest.providers.keyed_http import KeyedQuoteProvider, NoData, Unauthorized, number
from schemas import RawTick

MICROS = 1_000_000


class FmpProvider(KeyedQuoteProvider):
    """Equity, ETF and index quotes from FMP."""

    base_url = "https://financialmodelingprep.com"
    per_minute = 250
    per_day = 250

    def params(self, symbol: str) -> tuple[str, dict[str, str]]:
        """``/stable/quote?symbol=...``."""
        return "/stable/quote", {"symbol": symbol}

    def parse(self, symbol: str, body: Any, seq: int, ts_ingest: int) -> RawTick:
        """The first quote of the list as a QUOTE tick."""
        if isinstance(body, dict) and "Error Message" in body:
            raise Unauthorized(str(body["Error Message"])[:200])
        if not isinstance(body, list) or not body:
            raise NoData(f"FMP has no quote for {symbol}")
        quote = body[0]
        price = number(quote, "price")
        if price is None or price <= 0:
            raise NoData(f"FMP has no price for {symbol}")
        timestamp = number(quote, "timestamp")
        ts_event = ts_ingest if timestamp is None else int(timestamp * MICROS)
        return RawTick(
            symbol,
            self.name,
            "QUOTE",
            ts_event,
            ts_ingest,
            seq,
            price,
            volume=number(quote, "volume"),
            reference_price=number(quote, "previousClose"),
        )
