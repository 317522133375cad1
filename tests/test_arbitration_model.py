"""Model-based tests of the arbitration engine: generated market stories, checked step by step.

Hypothesis writes a story of up to five venues quoting one symbol: rounds of ticks, the market
drifting or gapping (0.1% to 30%, every venue at once), venues that stop, resume, lag, deviate
alone, repeat or reorder ticks, send event times from the future, go DOWN and UP, a pause of
minutes (a restart of ingest), a pause past the eviction span while another symbol of the
partition goes on (the engine forgets the symbol, then its ticks come again), and
snapshot-and-restore of the engine. After every step the
invariants of arbitration/README.md ("The rule and its guarantees") are checked against a
model that knows only what was sent:

- liveness: while a venue that is UP keeps sending, the symbol gets a new quote within
  ``LIVENESS_US`` of event time;
- safety: while honest venues are a strict majority of the fresh ones and agree, no quote
  strays from them by more than the band, and a venue away from them lowers the confidence;
- a venue alone is never refused as an outlier;
- determinism: an engine restored from snapshots emits exactly what the uninterrupted one does;
- closed candles are first, max, min and last of their bucket's quotes by (ts_event, seq),
  with the volume of its trades; confidence stays in [0, 1].

A failing story is shrunk to its shortest form and printed as the list of steps above.
``HYPOTHESIS_PROFILE=slow`` runs ten times as many stories (tests/conftest.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from arbitration import snapshots
from arbitration.engine.partition import PartitionEngine, SourceRecord
from arbitration.engine.statuses import StatusTimeline
from schemas import encode
from schemas.records import Candle, ProviderStatus, Quote, RawTick, Rejected, Trade
from schemas.times import TIMEFRAMES
from tests.factories import MS, SECOND, default_config

SYMBOL = "BTC/USDT"
OTHER = "ETH/USDT"  # another symbol of the partition, whose ticks move its event time on
VENUES = ("alpha", "beta", "gamma", "delta", "epsilon")
CONFIG = default_config()
FRESHNESS = CONFIG.freshness_us
LATENESS = CONFIG.effective_lateness_us
TOLERANCE = CONFIG.future_tolerance_us
STATUS_DELAY = CONFIG.effective_status_delay_us
MAX_ROUND = 500 * MS
MAX_JITTER = 100 * MS
MAX_LAG = 1500 * MS
# Freshness window, one round (with its latency jitter), the longest lag and a tick from
# the future within the tolerance: the stated bound plus what the story may add to it.
LIVENESS_US = FRESHNESS + MAX_ROUND + MAX_JITTER + MAX_LAG + TOLERANCE
HONEST_NOISE_BPS = 0.5
START_US = 1_764_806_400_000_000  # 2025-12-04T00:00:00Z


@dataclass
class Venue:
    """What the model knows of one venue: how it quotes and what it last sent."""

    name: str
    sending: bool = False
    lag_us: int = 0
    offset: float = 0.0
    seq: int = 0
    observed: tuple[int, float, bool] | None = None  # (ts_event, price, honest)
    streak_since: int | None = None
    last_round: int | None = None
    healthy_since: int | None = -1  # effective time of its last UP status; None when DOWN


class MarketStory(RuleBasedStateMachine):
    """One symbol quoted by several venues, fed to two engines: one runs uninterrupted,
    the other is snapshotted and restored whenever the story says ``restart``."""

    def __init__(self) -> None:
        super().__init__()
        self.timeline = StatusTimeline()
        self.live = PartitionEngine(CONFIG, "raw", 0, self.timeline)
        self.restored = PartitionEngine(CONFIG, "raw", 0, self.timeline)
        self.venues = {name: Venue(name) for name in VENUES}
        self.now = START_US
        self.price = 100.0
        self.offset = 0
        self.symbol_time: int | None = None
        self.last_emission: int | None = None
        self.quotes: list[Quote] = []
        self.trades: list[Trade] = []
        self.last_value: bytes | None = None
        self.rng = random.Random(0)

    # --- the story ------------------------------------------------------------------------

    @initialize(venues=st.integers(1, 5), seed=st.integers(0, 2**16))
    def open_market(self, venues: int, seed: int) -> None:
        """The first ``venues`` venues quote the symbol at 100."""
        self.rng = random.Random(seed)
        for name in VENUES[:venues]:
            self.venues[name].sending = True

    @rule(rounds=st.integers(1, 30), ms=st.integers(10, MAX_ROUND // MS))
    def trade(self, rounds: int, ms: int) -> None:
        """``rounds`` rounds ``ms`` apart: every sending venue quotes once per round, in a
        random order, and sometimes prints a trade."""
        for _ in range(rounds):
            self.now += ms * MS
            for venue in self.rng.sample(list(self.venues.values()), len(self.venues)):
                if venue.sending:
                    self.quote_round(venue)

    def quote_round(self, venue: Venue) -> None:
        """One round's quote of ``venue`` (and perhaps a trade); tracks its sending streak."""
        if venue.last_round is None or self.now - venue.last_round > MAX_ROUND:
            venue.streak_since = None
        venue.last_round = self.now
        jitter = int(self.rng.expovariate(1 / (20 * MS)))
        at = self.now - min(jitter, MAX_JITTER) - venue.lag_us
        if not self.send(venue, at, "QUOTE"):
            venue.streak_since = None
        elif venue.streak_since is None:
            venue.streak_since = self.symbol_time
        if self.rng.random() < 0.3:
            self.send(venue, at, "TRADE")

    @rule(bps=st.floats(-20, 20))
    def drift(self, bps: float) -> None:
        """The market moves a little, within the band."""
        self.price *= 1 + bps / 10_000

    @rule(percent=st.floats(0.1, 30), up=st.booleans())
    def gap(self, percent: float, up: bool) -> None:
        """The market gaps: every venue quotes the new level from its next tick on."""
        self.price *= 1 + percent / 100 if up else 1 / (1 + percent / 100)

    @rule(seconds=st.integers(5, 600))
    def pause(self, seconds: int) -> None:
        """Nothing is sent for a while (a weekend, a restart of ingest)."""
        self.now += seconds * SECOND

    @rule(seconds=st.integers(1, 600))
    def forget(self, seconds: int) -> None:
        """The symbol pauses longer than the eviction span while another symbol of the
        partition goes on: the engines forget the symbol (its open candles closed), and
        its venues' next ticks start it afresh."""
        self.now += CONFIG.effective_evict_us + seconds * SECOND
        tick = RawTick(OTHER, "alpha", "QUOTE", self.now, self.now, self.offset, 10.0)
        record = SourceRecord(self.offset, OTHER.encode(), encode(tick), self.now)
        self.offset += 1
        outputs = self.live.process(record)
        assert self.restored.process(record) == outputs, (
            "the restored engine and the uninterrupted one disagree"
        )
        assert SYMBOL not in self.live.books and SYMBOL not in self.live.candles
        for output in outputs:
            if isinstance(output, Candle) and output.symbol == SYMBOL and output.is_closed:
                self.check_candle(output)
        self.symbol_time = None
        for venue in self.venues.values():
            venue.observed = None
            venue.streak_since = None

    @rule(venue=st.sampled_from(VENUES))
    def stop(self, venue: str) -> None:
        """A venue stops sending."""
        self.venues[venue].sending = False
        self.venues[venue].streak_since = None

    @rule(venue=st.sampled_from(VENUES))
    def resume(self, venue: str) -> None:
        """A venue starts or resumes sending."""
        self.venues[venue].sending = True

    @rule(venue=st.sampled_from(VENUES), ms=st.integers(0, MAX_LAG // MS))
    def lag(self, venue: str, ms: int) -> None:
        """A venue's event times fall ``ms`` behind (a slow feed)."""
        self.venues[venue].lag_us = ms * MS

    @rule(venue=st.sampled_from(VENUES), percent=st.floats(1, 30), up=st.booleans())
    def deviate(self, venue: str, percent: float, up: bool) -> None:
        """A venue quotes ``percent`` away from the market (a broken feed, a bad print)."""
        self.venues[venue].offset = percent / 100 if up else -percent / 100 / (1 + percent / 100)

    @rule(venue=st.sampled_from(VENUES))
    def rejoin(self, venue: str) -> None:
        """A deviating venue quotes the market again."""
        self.venues[venue].offset = 0.0

    @precondition(lambda self: self.last_value is not None)
    @rule()
    def duplicate(self) -> None:
        """The last record is written again (a producer retry)."""
        self.feed(self.last_value, self.now)

    @rule(venue=st.sampled_from(VENUES))
    def reorder(self, venue: str) -> None:
        """A venue's two newest ticks arrive newest first."""
        self.now += 10 * MS
        state = self.venues[venue]
        newer = self.now - state.lag_us
        self.send(state, newer, "QUOTE")
        self.send(state, newer - 50 * MS, "QUOTE")

    @rule(venue=st.sampled_from(VENUES), ms=st.integers(1, 3 * TOLERANCE // MS))
    def future(self, venue: str, ms: int) -> None:
        """A venue's clock runs ahead: one tick with an event time ``ms`` after its ingest."""
        self.send(self.venues[venue], self.now + ms * MS, "QUOTE")

    @rule(venue=st.sampled_from(VENUES), down=st.booleans())
    def status(self, venue: str, down: bool) -> None:
        """Ingest reports a venue DOWN or UP."""
        self.timeline.add(ProviderStatus(venue, self.now, "DOWN" if down else "UP"))
        state = self.venues[venue]
        if down:
            state.healthy_since = None
            state.streak_since = None
        elif state.healthy_since is None:
            state.healthy_since = self.now + STATUS_DELAY

    @rule()
    def restart(self) -> None:
        """The worker restarts: the second engine is restored from a snapshot of itself."""
        self.restored = snapshots.loads(snapshots.dumps(self.restored), CONFIG, self.timeline)

    # --- sending and checking -------------------------------------------------------------

    def send(self, venue: Venue, at: int, kind: str) -> bool:
        """Write one tick of ``venue`` with event time ``at``; whether the model finds it
        valid (an observation: not late, not from the future)."""
        venue.seq += 1
        price = self.price * (1 + venue.offset) * (1 + self.rng.gauss(0, HONEST_NOISE_BPS / 10_000))
        tick = RawTick(
            SYMBOL,
            venue.name,
            kind,
            at,
            self.now,
            venue.seq,
            price,
            bid=price * 0.9999,
            ask=price * 1.0001,
            trade_id=f"{venue.name}-{venue.seq}" if kind == "TRADE" else None,
            trade_size=1.0 if kind == "TRADE" else None,
        )
        valid = at - self.now <= TOLERANCE and (
            self.symbol_time is None or at >= self.symbol_time - LATENESS
        )
        alone = not self.fresh_observations(exclude=venue.name, at=at)
        if valid:
            self.symbol_time = at if self.symbol_time is None else max(self.symbol_time, at)
            if kind == "QUOTE" and (venue.observed is None or at >= venue.observed[0]):
                venue.observed = (at, price, venue.offset == 0.0)
        outputs = self.feed(encode(tick), self.now)
        if valid and alone:
            assert not any(isinstance(o, Rejected) and o.reason == "outlier" for o in outputs), (
                f"{venue.name} is the only fresh venue, yet its tick was refused as an outlier: "
                f"{outputs}"
            )
        assert self.live.books[SYMBOL].watermark == self.symbol_time, (
            "the symbol's event time must be the newest event time of a valid tick"
        )
        return valid

    def feed(self, value: bytes, timestamp_us: int) -> list:
        """One raw record into both engines; they must agree."""
        self.last_value = value
        record = SourceRecord(self.offset, SYMBOL.encode(), value, timestamp_us)
        self.offset += 1
        outputs = self.live.process(record)
        assert self.restored.process(record) == outputs, (
            "the restored engine and the uninterrupted one disagree"
        )
        for output in outputs:
            if isinstance(output, Quote):
                self.quotes.append(output)
                self.last_emission = self.symbol_time
                self.check_safety(output)
            elif isinstance(output, Trade):
                self.trades.append(output)
            elif isinstance(output, Candle) and output.is_closed:
                self.check_candle(output)
        return outputs

    def fresh_observations(
        self, exclude: str | None = None, at: int | None = None
    ) -> dict[str, tuple[int, float, bool]]:
        """The newest valid quote of each venue that is fresh and not DOWN at the symbol's
        event time (or ``at``, if later), by the model."""
        known = [t for t in (self.symbol_time, at) if t is not None]
        if not known:
            return {}
        now = max(known)
        return {
            name: venue.observed
            for name, venue in self.venues.items()
            if venue.observed is not None
            and name != exclude
            and venue.observed[0] >= now - FRESHNESS
            and not self.down(name, now)
        }

    def down(self, venue: str, now: int) -> bool:
        """Whether the last status of ``venue`` the engine has applied at ``now`` is DOWN."""
        applied = self.timeline.between(None, now - STATUS_DELAY - 1)
        states = [s.state for s in applied if s.provider == venue]
        return bool(states) and states[-1] == "DOWN"

    def check_safety(self, quote: Quote) -> None:
        """While honest venues are a strict majority of the fresh ones and agree, the quote
        stays within the band around them, and a venue away from them costs confidence."""
        assert 0.0 <= quote.confidence <= 1.0
        fresh = self.fresh_observations()
        honest = sorted(price for _, price, ok in fresh.values() if ok)
        if not fresh or 2 * len(honest) <= len(fresh):
            return
        center = honest[len(honest) // 2]
        width = max(honest[-1] - honest[0], center * CONFIG.outlier_floor_bps / 10_000)
        limit = CONFIG.outlier_mads * width + (honest[-1] - honest[0])
        assert abs(quote.price - center) <= limit, (
            f"quote {quote.price} from {quote.provider} strays from the honest majority "
            f"{honest} of {len(fresh)} fresh venues"
        )
        strays = [p for _, p, ok in fresh.values() if not ok and abs(p - center) > limit]
        if strays:
            ceiling = (len(fresh) - 1 + 1 / 2) / len(fresh)  # agreement 1/2 at the floor
            assert quote.confidence <= ceiling, (
                f"venues at {strays} disagree with {honest}, yet confidence is {quote.confidence}"
            )

    def check_candle(self, candle: Candle) -> None:
        """A closed candle is its bucket's quotes (by ts_event, seq) and trades."""
        end = candle.open_time + TIMEFRAMES[candle.timeframe]
        inside = sorted(
            (q.ts_event, q.seq, q.price)
            for q in self.quotes
            if candle.open_time <= q.ts_event < end
        )
        prices = [price for _, _, price in inside]
        volume = 0.0
        trades = [t for t in self.trades if candle.open_time <= t.ts_event < end]
        for trade in trades:
            volume += trade.amount
        assert (candle.open, candle.high, candle.low, candle.close) == (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
        ), f"{candle} from {inside}"
        assert (candle.volume, candle.trade_count) == (volume, len(trades))

    @invariant()
    def no_symbol_freezes(self) -> None:
        """While a venue that is UP keeps sending, the quote moves within the bound."""
        if self.symbol_time is None:
            return
        since = self.symbol_time - LIVENESS_US
        sending = [
            v.name
            for v in self.venues.values()
            if v.sending
            and v.streak_since is not None
            and v.streak_since <= since
            and v.last_round is not None
            and self.now - v.last_round <= MAX_ROUND
            and v.healthy_since is not None
            and v.healthy_since <= since
            and v.lag_us <= MAX_LAG
        ]
        if sending:
            assert self.last_emission is not None and self.last_emission >= since, (
                f"{', '.join(sending)} kept sending for {LIVENESS_US / SECOND:.1f} s of event "
                f"time, yet the last quote was made at "
                f"{'never' if self.last_emission is None else self.last_emission - START_US} "
                f"(now {self.symbol_time - START_US}); last quote: "
                f"{self.quotes[-1] if self.quotes else None}"
            )


MarketStory.TestCase.settings = settings(
    max_examples=max(300, settings.default.max_examples), stateful_step_count=50, deadline=None
)
TestMarketStories = MarketStory.TestCase
