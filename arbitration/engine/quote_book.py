"""The arbitrated quote of one symbol, as a pure function of its ticks in log order.

A :class:`SymbolBook` keeps, per provider, the last accepted quote tick, the newest
*observed* one (accepted, or refused as an outlier: evidence of where the venue is), the
smoothed latency and the counts of seen and rejected ticks. The symbol's event time is the
newest event time of any tick that passed the validity checks, accepted or not, so the
freshness window moves with the market even while every tick is being refused.

1. :meth:`SymbolBook.refuse` applies the validity checks (``arbitration/checks.py``);
   :meth:`SymbolBook.observe` then records the tick as evidence and moves the event time;
   :meth:`SymbolBook.outlier` judges its price against the consensus of the latest
   observations of the fresh providers that are not DOWN, its own price included.
2. *Candidates* are the fresh providers (last accepted quote tick at most ``freshness``
   behind the symbol's event time) whose newest observation was accepted, whose last
   status is not DOWN and whose price is within the band of the fresh observations now. A
   provider refused as an outlier stops driving at once, and so does one the others have
   moved away from.
3. Each candidate gets a score (``arbitration/scoring.py``); the best one, ties to the name
   that sorts first, drives. The current driver keeps driving while no candidate beats it by
   more than ``switch_margin``, so the quote does not flap between equal providers; it loses
   the role as soon as it is stale, DOWN, refused, or out-scored (for example by
   disagreeing).
4. The quote carries the driver's price, bid, ask, sizes, volume and reference price, the
   sorted list of candidates, each candidate's score (rounded to 4 decimals) and the
   confidence, whose agreement covers every fresh observation, refused ones included.
   ``change`` is ``price - reference``, the reference being the driver's
   ``reference_price`` (previous close for equities, the price 24 hours earlier for crypto).

A quote tick older than its provider's last one still counts for latency, duplicates and
reliability but does not replace the last one. Only an accepted tick of a candidate can
produce a quote, and only if the quote's content differs from the previous one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from arbitration.engine import checks, scoring
from arbitration.engine.checks import Refusal
from arbitration.engine.config import EngineConfig
from arbitration.engine.provider_view import ProviderView
from arbitration.engine.statuses import ProviderHealth
from schemas.records import Quote, RawTick

HEALTHY = ProviderHealth()


class SymbolBook:
    """Providers of one symbol, the checks on its ticks, and the quote they make."""

    # The last band and its inputs: a cache, left out of snapshots (see __getstate__).
    _band: checks.Band | None = None
    _band_key: tuple[tuple[float, ...], float | None] = ((), None)

    def __init__(self, symbol: str, config: EngineConfig) -> None:
        self.symbol = symbol
        self.config = config
        self.providers: dict[str, ProviderView] = {}
        self.watermark: int | None = None
        self.driver: str | None = None
        self.last_quote: Quote | None = None
        self._seen: set[checks.Identity] = set()
        self._seen_order: deque[tuple[int, checks.Identity]] = deque()
        weights = config.weights
        self._weights = (
            weights.freshness,
            weights.latency,
            weights.uptime,
            weights.completeness,
            weights.reliability,
            weights.agreement,
        )

    def __getstate__(self) -> dict[str, object]:
        """The state to pickle: everything but the band cache."""
        state = self.__dict__.copy()
        state.pop("_band", None)
        state.pop("_band_key", None)
        return state

    def view(self, provider: str) -> ProviderView:
        """The view of ``provider``, created empty on first use (``providers`` stays sorted)."""
        view = self.providers.get(provider)
        if view is None:
            view = self.providers[provider] = ProviderView()
            self.providers = dict(sorted(self.providers.items()))
        return view

    def fresh(self) -> dict[str, RawTick]:
        """Last accepted quote tick of every fresh provider whose newest observation was
        accepted, by provider name in sorted order."""
        if self.watermark is None:
            return {}
        horizon = self.watermark - self.config.freshness_us
        return {
            name: view.tick
            for name, view in self.providers.items()
            if view.tick is not None and view.tick.ts_event >= horizon and not view.outlying
        }

    def observations(self, health: Mapping[str, ProviderHealth], now: int) -> dict[str, float]:
        """Newest observed price of every provider that is fresh at event time ``now`` and
        not DOWN, refused ones included."""
        horizon = now - self.config.freshness_us
        return {
            name: view.observed.price
            for name, view in self.providers.items()
            if view.observed is not None
            and view.observed.ts_event >= horizon
            and not health.get(name, HEALTHY).down
        }

    def refuse(self, tick: RawTick) -> Refusal | None:
        """Why ``tick`` is not a valid observation at all, or None if it is one."""
        config = self.config
        return (
            checks.bad_price(tick)
            or checks.crossed_book(tick)
            or checks.bad_size(tick)
            or checks.future(tick, config.future_tolerance_us)
            or self._duplicate(tick)
            or checks.late(tick, self.watermark, config.effective_lateness_us)
        )

    def observe(self, tick: RawTick) -> None:
        """Take a valid tick as evidence: remember it for duplicates, move the event time."""
        for key in checks.identities(tick):
            self._seen.add(key)
            self._seen_order.append((tick.ts_event, key))
        if self.watermark is None or tick.ts_event > self.watermark:
            self.watermark = tick.ts_event
            self._forget_before(self.watermark - self.config.effective_lateness_us)

    def band(self, sample: Mapping[str, float]) -> checks.Band:
        """The band of ``sample``, the latest price of each fresh provider; the last quote's
        price breaks a tie between two equal groups.

        The last band is kept with its inputs: a quote tick's outlier check and its quote
        most often ask for the same one."""
        reference = None if self.last_quote is None else self.last_quote.price
        values = tuple(sample.values())
        key = (values, reference)
        if key == self._band_key and self._band is not None:
            return self._band
        found = self._band = checks.band(
            values, self.config.outlier_mads, self.config.outlier_floor_bps, reference
        )
        self._band_key = key
        return found

    def outlier(self, tick: RawTick, health: Mapping[str, ProviderHealth]) -> Refusal | None:
        """Why an observed ``tick`` is refused as an outlier, or None: its price against the
        band of the fresh observations, its own price in place of its provider's."""
        assert self.watermark is not None, "an observed tick has moved the event time"
        sample = self.observations(health, self.watermark)
        sample[tick.provider] = tick.price
        return self.band(sample).refuse(tick.price)

    def reject(self, tick: RawTick, outlier: bool = False) -> None:
        """Count a rejected tick against its provider; a quote tick refused as an outlier is
        kept as the provider's observation."""
        view = self.view(tick.provider)
        view.seen += 1
        view.rejected += 1
        if outlier and tick.kind == "QUOTE":
            view.observe(tick, outlying=True)

    def accept(self, tick: RawTick) -> None:
        """Take an observed tick that passed every check."""
        view = self.view(tick.provider)
        view.seen += 1
        if tick.kind == "QUOTE":
            latency = float(tick.ts_ingest - tick.ts_event)
            if view.tick is None:
                view.latency_us = latency
            else:
                view.latency_us += scoring.LATENCY_SMOOTHING * (latency - view.latency_us)
            if view.tick is None or tick.ts_event >= view.tick.ts_event:
                view.take(tick)
            view.observe(tick, outlying=False)

    def quote(
        self, trigger: RawTick, seq: int, health: Mapping[str, ProviderHealth]
    ) -> Quote | None:
        """The quote after ``trigger`` (offset ``seq``) was accepted, or None if unchanged.

        One pass over the providers finds the fresh ones and the observations; each
        candidate is scored once; the Quote is built only when its content changed."""
        watermark = self.watermark
        if trigger.kind != "QUOTE" or watermark is None:
            return None
        config = self.config
        window = config.freshness_us
        horizon = watermark - window
        fresh: dict[str, RawTick] = {}
        observed: dict[str, float] = {}
        for name, view in self.providers.items():
            tick = view.tick
            if tick is not None and tick.ts_event >= horizon and not view.outlying:
                fresh[name] = tick
            seen = view.observed
            if seen is not None and seen.ts_event >= horizon and not health.get(name, HEALTHY).down:
                observed[name] = seen.price
        if trigger.provider not in fresh or not observed:
            return None  # not fresh itself, or every fresh provider is DOWN
        band = self.band(observed)
        center, limit, bps = band.center, band.limit, config.agreement_bps
        agreements = {
            name: scoring.agreement(price, center, bps) for name, price in observed.items()
        }
        scale, weights = config.latency_scale_us, self._weights
        scores: dict[str, float] = {}
        best: str | None = None
        best_score = 0.0
        for name, tick in fresh.items():
            state = health.get(name, HEALTHY)
            if state.down or abs(tick.price - center) > limit:  # not Band.admits
                continue
            view = self.providers[name]
            score = scores[name] = scoring.weighted_mean(
                (
                    scoring.freshness(watermark - tick.ts_event, window),
                    scoring.latency(view.latency_us, scale),
                    state.uptime,
                    view.completeness,
                    scoring.reliability(view.seen, view.rejected),
                    agreements[name],
                ),
                weights,
            )
            if best is None or score > best_score:  # the first of the best in name order
                best, best_score = name, score
        if best is None:
            return None
        if self.driver not in scores or best_score > scores[self.driver] + config.switch_margin:
            self.driver = best
        driver = fresh[self.driver]
        confidence = scoring.confidence(
            list(agreements.values()),
            scoring.freshness(watermark - driver.ts_event, window),
            config.expected_providers,
        )
        providers = list(fresh)
        last = self.last_quote
        if last is not None and (
            driver.price,
            driver.bid,
            driver.ask,
            driver.volume,
            driver.provider,
            confidence,
            providers,
        ) == (
            last.price,
            last.bid,
            last.ask,
            last.volume,
            last.provider,
            last.confidence,
            last.providers,
        ):
            return None
        quote = self.last_quote = _make_quote(driver, seq, providers, confidence, scores)
        return quote

    def _duplicate(self, tick: RawTick) -> Refusal | None:
        for key in checks.identities(tick):
            if key in self._seen:
                what = "trade id" if key[0] == "trade" else "seq"
                return "duplicate", f"{what} {key[2]} of {tick.provider} seen before"
        return None

    def _forget_before(self, horizon: int) -> None:
        """Drop identities older than ``horizon``: such ticks are refused as late anyway."""
        order = self._seen_order
        while order and order[0][0] < horizon:
            self._seen.discard(order.popleft()[1])


def _make_quote(
    driver: RawTick, seq: int, providers: list[str], confidence: float, scores: dict[str, float]
) -> Quote:
    change = change_percent = None
    reference = driver.reference_price
    if reference is not None and math.isfinite(reference) and reference > 0:
        change = round(driver.price - reference, 8)
        change_percent = round(change / reference * 100, 4)
    return Quote(
        symbol=driver.symbol,
        ts_event=driver.ts_event,
        ts_ingest=driver.ts_ingest,
        seq=seq,
        price=driver.price,
        provider=driver.provider,
        confidence=confidence,
        bid=driver.bid,
        ask=driver.ask,
        bid_size=driver.bid_size,
        ask_size=driver.ask_size,
        volume=driver.volume,
        change=change,
        change_percent=change_percent,
        reference_price=reference,
        providers=providers,
        scores={name: round(score, 4) for name, score in scores.items()},
    )
