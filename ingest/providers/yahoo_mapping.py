"""Pure parts of the Yahoo Finance provider: symbol forms, chart metadata and streamed
pricing messages to RawTicks, and error classification."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from curl_cffi.requests import exceptions as http_errors
from websockets import exceptions as ws_errors
from yfinance import exceptions as yf_errors

from ingest.providers.failure import Failure
from runtime.backoff import LONG, NETWORK, RATE_LIMIT
from runtime.catalog import is_fiat_pair
from schemas import RawTick
from schemas.times import datetime_to_micros

MICROS = 1_000_000


def yahoo_symbol(canonical: str) -> str | None:
    """Yahoo's ticker for a canonical symbol, None for a pair Yahoo does not quote as such.

    ``EUR/USD`` is ``EURUSD=X``; tickers (``AAPL``, ``BRK-B``, ``^GSPC``, ``GC=F``) are
    Yahoo's own already; crypto pairs are left to the exchanges.
    """
    if "/" not in canonical:
        return canonical
    if is_fiat_pair(canonical):
        return canonical.replace("/", "") + "=X"
    return None


def yahoo_symbols(canonical: Iterable[str]) -> dict[str, str]:
    """``{Yahoo ticker: canonical symbol}`` for the symbols Yahoo can serve."""
    return {yahoo: symbol for symbol in canonical if (yahoo := yahoo_symbol(symbol)) is not None}


def _micros(moment: Any, fallback: int) -> int:
    if isinstance(moment, datetime):
        return datetime_to_micros(moment)
    if isinstance(moment, int | float):
        return int(moment * MICROS)
    return fallback


def chart_meta(body: Any) -> dict[str, Any] | None:
    """The ``meta`` of the first result of a decoded chart response; None when the answer
    carries an error or no result (a ticker Yahoo does not know)."""
    chart = body.get("chart") if isinstance(body, dict) else None
    results = chart.get("result") if isinstance(chart, dict) else None
    if not isinstance(chart, dict) or chart.get("error") or not results:
        return None
    meta = results[0].get("meta") if isinstance(results[0], dict) else None
    return meta if isinstance(meta, dict) else None


def chart_to_tick(
    meta: Mapping[str, Any], canonical: str, provider: str, seq: int, ts_ingest: int
) -> RawTick | None:
    """A QUOTE tick from the metadata of Yahoo's chart response; None without a price."""
    price = meta.get("regularMarketPrice")
    if price is None or price <= 0:
        return None
    reference = meta.get("chartPreviousClose") or meta.get("previousClose")
    volume = meta.get("regularMarketVolume")
    return RawTick(
        canonical,
        provider,
        "QUOTE",
        _micros(meta.get("regularMarketTime"), ts_ingest),
        ts_ingest,
        seq,
        float(price),
        volume=None if volume is None else float(volume),
        reference_price=None if reference is None else float(reference),
    )


def pricing_to_tick(
    message: Mapping[str, Any], canonical: str, provider: str, seq: int, ts_ingest: int
) -> RawTick | None:
    """A QUOTE tick from one decoded message of Yahoo's streamer (yfinance's PricingData)."""
    price = message.get("price")
    if price is None or float(price) <= 0:
        return None
    ts_ms = message.get("time")
    bid, ask = message.get("bid"), message.get("ask")
    volume = message.get("day_volume")
    reference = message.get("previous_close")
    return RawTick(
        canonical,
        provider,
        "QUOTE",
        ts_ingest if ts_ms is None else int(ts_ms) * 1000,
        ts_ingest,
        seq,
        float(price),
        bid=None if bid is None else float(bid),
        ask=None if ask is None else float(ask),
        bid_size=None if message.get("bid_size") is None else float(message["bid_size"]),
        ask_size=None if message.get("ask_size") is None else float(message["ask_size"]),
        volume=None if volume is None else float(volume),
        reference_price=None if reference is None else float(reference),
    )


def classify_yahoo_error(error: BaseException) -> Failure:
    """Rate limits (HTTP 429) back off; a ticker Yahoo does not know (HTTP 404) takes a long
    cooldown; 5xx, timeouts and network errors (a streamer connection refused or dropped
    among them) retry with backoff; anything else (a malformed frame) degrades and retries."""
    if isinstance(error, yf_errors.YFRateLimitError):
        return Failure("rate_limited", "DEGRADED", RATE_LIMIT)
    status = _http_status(error)
    if isinstance(error, yf_errors.YFTickerMissingError) or status == 404:
        return Failure("missing_market", "DEGRADED", LONG)
    if status == 429:
        return Failure("rate_limited", "DEGRADED", RATE_LIMIT)
    if status is not None and status >= 500:
        return Failure("unavailable", "DOWN", NETWORK)
    if isinstance(error, http_errors.Timeout | TimeoutError):
        return Failure("timeout", "DOWN", NETWORK)
    if isinstance(error, http_errors.RequestException | OSError | ws_errors.WebSocketException):
        return Failure("network", "DOWN", NETWORK)
    return Failure("bad_response", "DEGRADED", NETWORK)


def _http_status(error: BaseException) -> int | None:
    if isinstance(error, ws_errors.InvalidStatus):
        return error.response.status_code
    if not isinstance(error, http_errors.HTTPError):
        return None
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    if code is None:
        found = re.search(r"HTTP Error (\d{3})", str(error))
        code = int(found[1]) if found else None
    return code
