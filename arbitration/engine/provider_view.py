"""What a symbol's quote book knows of one provider: its last accepted quote tick, its newest
observation, its smoothed latency and its counts of seen and rejected ticks."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import RawTick

OPTIONAL_FIELDS = ("bid", "ask", "bid_size", "ask_size", "volume", "reference_price")


@dataclass
class ProviderView:
    """What the book knows of one provider of its symbol."""

    tick: RawTick | None = None
    observed: RawTick | None = None
    outlying: bool = False
    latency_us: float = 0.0
    seen: int = 0
    rejected: int = 0
    completeness: float = 0.0

    def take(self, tick: RawTick) -> None:
        """Make ``tick`` the last quote tick; ``completeness`` becomes the share of the
        optional quote fields it carries."""
        self.tick = tick
        present = (
            (tick.bid is not None)
            + (tick.ask is not None)
            + (tick.bid_size is not None)
            + (tick.ask_size is not None)
            + (tick.volume is not None)
            + (tick.reference_price is not None)
        )
        self.completeness = present / len(OPTIONAL_FIELDS)

    def observe(self, tick: RawTick, outlying: bool) -> None:
        """Keep ``tick`` as the newest observation unless a newer one is already kept."""
        if self.observed is None or tick.ts_event >= self.observed.ts_event:
            self.observed = tick
            self.outlying = outlying
