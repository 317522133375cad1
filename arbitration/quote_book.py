"""The arbitrated quote of each symbol, as a pure function of the ticks seen in log order.

First rule (the full scoring engine replaces it): among the providers whose last quote tick
is *fresh* (its event time within ``freshness_us`` of the newest event time seen for the
symbol), the one with the lowest smoothed latency (``ts_ingest - ts_event``) drives the
quote; ties go to the provider name that sorts first.

Confidence is the share of fresh providers whose price lies within ``AGREEMENT_BPS`` of
their median, scaled by ``min(1, fresh providers / EXPECTED_PROVIDERS)``.

Change and change_percent are measured against the driving tick's reference price
(previous close for equities, the price 24 hours earlier for crypto).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from schemas.records import Quote, RawTick

AGREEMENT_BPS = 50.0
EXPECTED_PROVIDERS = 3
LATENCY_SMOOTHING = 0.2


@dataclass
class _ProviderView:
    tick: RawTick
    latency_us: float


class QuoteBook:
    """Latest quote ticks of one symbol per provider, and the quote they make."""

    def __init__(self, symbol: str, freshness_us: int) -> None:
        self.symbol = symbol
        self.freshness_us = freshness_us
        self.providers: dict[str, _ProviderView] = {}
        self.newest_event_us = 0
        self.last_quote: Quote | None = None

    def apply(self, tick: RawTick, seq: int) -> Quote | None:
        """Take one quote tick; return the new quote if it changed, else None.

        ``seq`` is the tick's offset in the input log and becomes the quote's ``seq``.
        Trade prints, unusable prices and ticks older than the provider's last one change
        nothing.
        """
        if tick.kind != "QUOTE" or tick.symbol != self.symbol or not _usable(tick.price):
            return None
        view = self.providers.get(tick.provider)
        latency = float(tick.ts_ingest - tick.ts_event)
        if view is None:
            self.providers[tick.provider] = _ProviderView(tick, latency)
        elif tick.ts_event < view.tick.ts_event:
            return None
        else:
            view.tick = tick
            view.latency_us += LATENCY_SMOOTHING * (latency - view.latency_us)
        self.newest_event_us = max(self.newest_event_us, tick.ts_event)
        quote = self._quote(seq)
        if quote is None or _same_content(quote, self.last_quote):
            return None
        self.last_quote = quote
        return quote

    def _quote(self, seq: int) -> Quote | None:
        horizon = self.newest_event_us - self.freshness_us
        fresh = sorted(
            (view for view in self.providers.values() if view.tick.ts_event >= horizon),
            key=lambda view: (view.latency_us, view.tick.provider),
        )
        if not fresh:
            return None
        driver = fresh[0].tick
        prices = [view.tick.price for view in fresh]
        median = statistics.median(prices)
        agreeing = sum(abs(p - median) <= median * AGREEMENT_BPS / 10_000 for p in prices)
        coverage = min(1.0, len(fresh) / EXPECTED_PROVIDERS)
        confidence = round(agreeing / len(fresh) * coverage, 4)
        change = change_percent = None
        if driver.reference_price is not None and _usable(driver.reference_price):
            change = round(driver.price - driver.reference_price, 8)
            change_percent = round(change / driver.reference_price * 100, 4)
        return Quote(
            symbol=self.symbol, ts_event=driver.ts_event, ts_ingest=driver.ts_ingest, seq=seq,
            price=driver.price, provider=driver.provider, confidence=confidence,
            bid=driver.bid, ask=driver.ask, bid_size=driver.bid_size, ask_size=driver.ask_size,
            volume=driver.volume, change=change, change_percent=change_percent,
            reference_price=driver.reference_price,
            providers=sorted(view.tick.provider for view in fresh),
        )


def _usable(price: float) -> bool:
    return math.isfinite(price) and price > 0


def _same_content(quote: Quote, previous: Quote | None) -> bool:
    if previous is None:
        return False
    return (quote.price, quote.bid, quote.ask, quote.volume, quote.provider, quote.confidence,
            quote.providers) == (previous.price, previous.bid, previous.ask, previous.volume,
                                 previous.provider, previous.confidence, previous.providers)


class QuoteEngine:
    """One QuoteBook per symbol."""

    def __init__(self, freshness_us: int) -> None:
        self.freshness_us = freshness_us
        self.books: dict[str, QuoteBook] = {}

    def apply(self, tick: RawTick, seq: int) -> Quote | None:
        """Route a tick to its symbol's book; see :meth:`QuoteBook.apply`."""
        book = self.books.get(tick.symbol)
        if book is None:
            book = self.books[tick.symbol] = QuoteBook(tick.symbol, self.freshness_us)
        return book.apply(tick, seq)
