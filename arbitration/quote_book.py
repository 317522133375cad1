"""The arbitrated quote of one symbol, as a pure function of its ticks in log order.

A :class:`SymbolBook` keeps, per provider, the last accepted quote tick, the smoothed
latency and the counts of seen and rejected ticks. It refuses bad ticks (see
``arbitration/checks.py``) and picks the driving provider:

1. *Candidates* are the fresh providers (last quote tick at most ``freshness`` behind the
   symbol's event time) whose last status is not DOWN.
2. Each candidate gets a score (``arbitration/scoring.py``); the best one, ties to the name
   that sorts first, drives. The current driver keeps driving while no candidate beats it by
   more than ``switch_margin``, so the quote does not flap between equal providers; it loses
   the role as soon as it is stale, DOWN, or out-scored (for example by disagreeing).
3. The quote carries the driver's price, bid, ask, sizes, volume and reference price, the
   sorted list of fresh providers, each candidate's score (rounded to 4 decimals) and the
   confidence. ``change`` is ``price - reference``, the reference being the driver's
   ``reference_price`` (previous close for equities, the price 24 hours earlier for crypto).

A quote tick older than its provider's last one still counts for latency, duplicates and
reliability but does not replace the last one. Only a tick of a fresh provider can produce
a quote, and only if the quote's content differs from the previous one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from arbitration import checks, scoring
from arbitration.checks import Refusal
from arbitration.config import EngineConfig
from arbitration.statuses import ProviderHealth
from schemas.records import Quote, RawTick

OPTIONAL_FIELDS = ("bid", "ask", "bid_size", "ask_size", "volume", "reference_price")
HEALTHY = ProviderHealth()


@dataclass
class ProviderView:
    """What the book knows of one provider of its symbol."""

    tick: RawTick | None = None
    latency_us: float = 0.0
    seen: int = 0
    rejected: int = 0
    completeness: float = 0.0

    def take(self, tick: RawTick) -> None:
        """Make ``tick`` the last quote tick; ``completeness`` becomes the share of the
        optional quote fields it carries."""
        self.tick = tick
        present = sum(getattr(tick, name) is not None for name in OPTIONAL_FIELDS)
        self.completeness = present / len(OPTIONAL_FIELDS)


class SymbolBook:
    """Providers of one symbol, the checks on its ticks, and the quote they make."""

    def __init__(self, symbol: str, config: EngineConfig) -> None:
        self.symbol = symbol
        self.config = config
        self.providers: dict[str, ProviderView] = {}
        self.watermark: int | None = None
        self.driver: str | None = None
        self.last_quote: Quote | None = None
        self._seen: set[tuple] = set()
        self._seen_order: deque[tuple[int, tuple]] = deque()
        weights = config.weights
        self._weights = (weights.freshness, weights.latency, weights.uptime,
                         weights.completeness, weights.reliability, weights.agreement)

    def view(self, provider: str) -> ProviderView:
        """The view of ``provider``, created empty on first use (``providers`` stays sorted)."""
        view = self.providers.get(provider)
        if view is None:
            view = self.providers[provider] = ProviderView()
            self.providers = dict(sorted(self.providers.items()))
        return view

    def fresh(self) -> dict[str, RawTick]:
        """Last quote tick of every fresh provider, by provider name in sorted order."""
        if self.watermark is None:
            return {}
        horizon = self.watermark - self.config.freshness_us
        return {name: view.tick for name, view in self.providers.items()
                if view.tick is not None and view.tick.ts_event >= horizon}

    def refuse(self, tick: RawTick) -> Refusal | None:
        """Why ``tick`` must be rejected, or None if it is acceptable."""
        config = self.config
        refusal = (checks.bad_price(tick) or checks.crossed_book(tick) or checks.bad_size(tick)
                   or checks.future(tick, config.future_tolerance_us)
                   or self._duplicate(tick)
                   or checks.late(tick, self.watermark, config.effective_lateness_us))
        if refusal is not None:
            return refusal
        others = [t.price for name, t in self.fresh().items() if name != tick.provider]
        return checks.outlier(tick.price, others, config.outlier_mads, config.outlier_floor_bps)

    def reject(self, tick: RawTick) -> None:
        """Count a rejected tick against its provider."""
        view = self.view(tick.provider)
        view.seen += 1
        view.rejected += 1

    def accept(self, tick: RawTick) -> None:
        """Take an acceptable tick: remember it for duplicates, move the event time."""
        view = self.view(tick.provider)
        view.seen += 1
        for key in _identities(tick):
            self._seen.add(key)
            self._seen_order.append((tick.ts_event, key))
        if self.watermark is None or tick.ts_event > self.watermark:
            self.watermark = tick.ts_event
            self._forget_before(self.watermark - self.config.effective_lateness_us)
        if tick.kind == "QUOTE":
            latency = float(tick.ts_ingest - tick.ts_event)
            if view.tick is None:
                view.latency_us = latency
            else:
                view.latency_us += scoring.LATENCY_SMOOTHING * (latency - view.latency_us)
            if view.tick is None or tick.ts_event >= view.tick.ts_event:
                view.take(tick)

    def quote(self, trigger: RawTick, seq: int,
              health: Mapping[str, ProviderHealth]) -> Quote | None:
        """The quote after ``trigger`` (offset ``seq``) was accepted, or None if unchanged."""
        fresh = self.fresh()
        if trigger.kind != "QUOTE" or trigger.provider not in fresh:
            return None
        consensus = scoring.median([tick.price for tick in fresh.values()])
        agreements = {name: scoring.agreement(tick.price, consensus, self.config.agreement_bps)
                      for name, tick in fresh.items()}
        candidates = [name for name in fresh if not health.get(name, HEALTHY).down]
        if not candidates:
            return None
        scores = {name: self._score(name, agreements[name], health) for name in candidates}
        best = min(candidates, key=lambda name: (-scores[name], name))
        if self.driver not in scores or scores[best] > scores[self.driver] + \
                self.config.switch_margin:
            self.driver = best
        driver = fresh[self.driver]
        age = self.watermark - driver.ts_event
        quote = _make_quote(driver, seq, list(fresh), scoring.confidence(
            list(agreements.values()), scoring.freshness(age, self.config.freshness_us),
            self.config.expected_providers), scores)
        if _same_content(quote, self.last_quote):
            return None
        self.last_quote = quote
        return quote

    def components(self, name: str, agreement: float,
                   health: Mapping[str, ProviderHealth]) -> tuple[float, ...]:
        """Score components of one fresh provider, in the order of ``scoring.Components``."""
        view = self.providers[name]
        config = self.config
        return (scoring.freshness(self.watermark - view.tick.ts_event, config.freshness_us),
                scoring.latency(view.latency_us, config.latency_scale_us),
                health.get(name, HEALTHY).uptime,
                view.completeness,
                scoring.reliability(view.seen, view.rejected),
                agreement)

    def _score(self, name: str, agreement: float, health: Mapping[str, ProviderHealth]) -> float:
        return scoring.weighted_mean(self.components(name, agreement, health), self._weights)

    def _duplicate(self, tick: RawTick) -> Refusal | None:
        for key in _identities(tick):
            if key in self._seen:
                what = "trade id" if key[0] == "trade" else "seq"
                return "duplicate", f"{what} {key[2]} of {tick.provider} seen before"
        return None

    def _forget_before(self, horizon: int) -> None:
        """Drop identities older than ``horizon``: such ticks are refused as late anyway."""
        order = self._seen_order
        while order and order[0][0] < horizon:
            self._seen.discard(order.popleft()[1])


def _identities(tick: RawTick) -> list[tuple]:
    keys: list[tuple] = [("seq", tick.provider, tick.seq)]
    if tick.kind == "TRADE" and tick.trade_id is not None:
        keys.append(("trade", tick.provider, tick.trade_id))
    return keys


def _make_quote(driver: RawTick, seq: int, providers: list[str], confidence: float,
                scores: dict[str, float]) -> Quote:
    change = change_percent = None
    reference = driver.reference_price
    if reference is not None and math.isfinite(reference) and reference > 0:
        change = round(driver.price - reference, 8)
        change_percent = round(change / reference * 100, 4)
    return Quote(
        symbol=driver.symbol, ts_event=driver.ts_event, ts_ingest=driver.ts_ingest, seq=seq,
        price=driver.price, provider=driver.provider, confidence=confidence,
        bid=driver.bid, ask=driver.ask, bid_size=driver.bid_size, ask_size=driver.ask_size,
        volume=driver.volume, change=change, change_percent=change_percent,
        reference_price=reference, providers=providers,
        scores={name: round(score, 4) for name, score in scores.items()},
    )


def _same_content(quote: Quote, previous: Quote | None) -> bool:
    if previous is None:
        return False
    return (quote.price, quote.bid, quote.ask, quote.volume, quote.provider, quote.confidence,
            quote.providers) == (previous.price, previous.bid, previous.ask, previous.volume,
                                 previous.provider, previous.confidence, previous.providers)
