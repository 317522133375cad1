"""Pure parts of the CCXT provider: ccxt's unified tickers and trades to RawTicks, the
canonical-to-venue symbol mapping over loaded markets, and error classification."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import ccxt

from ingest.providers.admission import ACCEPTED, Verdict, refused
from ingest.providers.failure import Failure
from runtime.backoff import LONG, NETWORK, RATE_LIMIT
from runtime.exchanges import active_spot
from schemas import RawTick

MS_TO_US = 1000


def venue_symbols(
    markets: Mapping[str, Mapping[str, Any]], canonical: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """Split ``canonical`` symbols into those the venue lists as active spot markets and the rest.

    Returns ``({ccxt unified symbol: canonical symbol}, [missing canonical symbols])``. Our
    crypto form ``BASE/QUOTE`` is ccxt's unified spot symbol (ccxt already maps venue codes
    such as Kraken's ``XBT`` to ``BTC``), so a spot market under that key serves it.
    """
    served: dict[str, str] = {}
    missing: list[str] = []
    for symbol in canonical:
        if market_verdict(markets.get(symbol)).ok:
            served[symbol] = symbol
        else:
            missing.append(symbol)
    return served, missing


def market_verdict(market: Mapping[str, Any] | None) -> Verdict:
    """Whether a loaded ccxt market (None: not listed) can serve its pair: listed, spot and
    not marked inactive."""
    if market is None:
        return refused("not_listed")
    if active_spot(market):
        return ACCEPTED
    return refused("inactive" if market.get("spot") else "not_spot")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _event_micros(timestamp_ms: Any, ts_ingest: int) -> int:
    return ts_ingest if timestamp_ms is None else int(timestamp_ms) * MS_TO_US


def ticker_to_tick(
    ticker: Mapping[str, Any], canonical: str, provider: str, seq: int, ts_ingest: int
) -> RawTick | None:
    """A QUOTE tick from a ccxt ticker; None when it carries no price at all.

    The price is ``last`` (else ``close``, else the bid/ask midpoint); missing bid, ask or
    sizes stay None; without an exchange timestamp the event time is the ingest time.
    """
    bid, ask = _number(ticker.get("bid")), _number(ticker.get("ask"))
    price = _number(ticker.get("last"))
    if price is None:
        price = _number(ticker.get("close"))
    if price is None and bid is not None and ask is not None:
        price = (bid + ask) / 2
    if price is None or price <= 0:
        return None
    reference = _number(ticker.get("open"))
    if reference is None:
        reference = _number(ticker.get("previousClose"))
    return RawTick(
        canonical,
        provider,
        "QUOTE",
        _event_micros(ticker.get("timestamp"), ts_ingest),
        ts_ingest,
        seq,
        price,
        bid=bid,
        ask=ask,
        bid_size=_number(ticker.get("bidVolume")),
        ask_size=_number(ticker.get("askVolume")),
        volume=_number(ticker.get("baseVolume")),
        reference_price=reference,
    )


def trade_to_tick(
    trade: Mapping[str, Any], canonical: str, provider: str, seq: int, ts_ingest: int
) -> RawTick | None:
    """A TRADE tick from a ccxt trade; None without a positive price or amount."""
    price, amount = _number(trade.get("price")), _number(trade.get("amount"))
    if price is None or price <= 0 or amount is None or amount <= 0:
        return None
    trade_id = trade.get("id")
    side = trade.get("side")
    return RawTick(
        canonical,
        provider,
        "TRADE",
        _event_micros(trade.get("timestamp"), ts_ingest),
        ts_ingest,
        seq,
        price,
        trade_id=None if trade_id is None else str(trade_id),
        trade_size=amount,
        side=side if side in ("buy", "sell") else None,
    )


def classify_ccxt_error(error: BaseException) -> Failure:
    """What a failed ccxt call means for the provider.

    Rate limits (RateLimitExceeded, DDoSProtection) degrade it and back off; a venue that
    is unavailable, blocks our region (PermissionDenied, HTTP 451) or lacks a market
    (BadSymbol) takes a long cooldown; network errors and timeouts are retried with
    backoff; anything else (a malformed or unexpected response) degrades it and is retried
    with backoff.
    """
    if isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return Failure("rate_limited", "DEGRADED", RATE_LIMIT)
    if isinstance(error, ccxt.ExchangeNotAvailable) and not _region_block(error):
        return Failure("unavailable", "DOWN", LONG)
    if isinstance(error, ccxt.PermissionDenied | ccxt.AccountSuspended | ccxt.ExchangeNotAvailable):
        return Failure("region_blocked", "DOWN", LONG)
    if isinstance(error, ccxt.BadSymbol):
        return Failure("missing_market", "DEGRADED", LONG)
    if isinstance(error, ccxt.RequestTimeout | TimeoutError):
        return Failure("timeout", "DOWN", NETWORK)
    if isinstance(error, ccxt.NetworkError | OSError):
        return Failure("network", "DOWN", NETWORK)
    return Failure("bad_response", "DEGRADED", NETWORK)


def _region_block(error: BaseException) -> bool:
    text = str(error).lower()
    return " 451 " in text or "restricted location" in text
