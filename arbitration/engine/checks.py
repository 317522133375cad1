"""Why a raw tick is refused: one pure function per rule, each returning a reason or None.

A refusal is ``(reason, detail)``; the reasons are the DLQ's vocabulary:

- ``bad_price``: price (or a present bid or ask) is zero, negative, NaN or infinite;
- ``crossed_book``: bid above ask;
- ``bad_size``: a trade without a positive, finite size;
- ``future``: ``ts_event`` later than ``ts_ingest`` plus the tolerance (never the wall clock);
- ``duplicate``: the same provider and seq again, or the same provider and trade id;
- ``late``: ``ts_event`` older than the symbol's event time minus the allowed lateness, so
  it would fall into a closed candle;
- ``outlier``: outside the :class:`Band` of the fresh providers' latest prices (this tick's
  in place of its provider's): farther from their consensus than ``outlier_mads`` times
  their spread, the spread floored at ``outlier_floor_bps`` of the consensus;
- ``undecodable``: not a RawTick at all (decided by the engine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from arbitration.engine.scoring import BPS, consensus, spread
from schemas.records import RawTick

Refusal = tuple[str, str]
# What makes a tick a duplicate: (kind, provider, seq or trade id).
Identity = tuple[str, str, int | str]


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def bad_price(tick: RawTick) -> Refusal | None:
    """Price, bid and ask must be finite and above zero when present."""
    price, bid, ask = tick.price, tick.bid, tick.ask
    if (
        (price is None or _positive(price))
        and (bid is None or _positive(bid))
        and (ask is None or _positive(ask))
    ):
        return None
    for name, value in (("price", price), ("bid", bid), ("ask", ask)):
        if value is not None and not _positive(value):
            return "bad_price", f"{name} is {value!r}"
    return None


def crossed_book(tick: RawTick) -> Refusal | None:
    """A bid above the ask cannot be a real market."""
    if tick.bid is not None and tick.ask is not None and tick.bid > tick.ask:
        return "crossed_book", f"bid {tick.bid} above ask {tick.ask}"
    return None


def bad_size(tick: RawTick) -> Refusal | None:
    """A trade needs a positive, finite size."""
    if tick.kind == "TRADE" and (tick.trade_size is None or not _positive(tick.trade_size)):
        return "bad_size", f"trade size is {tick.trade_size!r}"
    return None


def future(tick: RawTick, tolerance_us: int) -> Refusal | None:
    """Event time may lead ingest time by at most ``tolerance_us`` (clock skew)."""
    lead = tick.ts_event - tick.ts_ingest
    if lead > tolerance_us:
        return "future", f"ts_event {lead} us after ts_ingest (tolerance {tolerance_us} us)"
    return None


def late(tick: RawTick, watermark_us: int | None, lateness_us: int) -> Refusal | None:
    """Older than the symbol's event time minus the allowed lateness."""
    if watermark_us is not None and tick.ts_event < watermark_us - lateness_us:
        behind = watermark_us - tick.ts_event
        return "late", f"{behind} us behind the symbol's event time (allowed {lateness_us} us)"
    return None


@dataclass(frozen=True, slots=True)
class Band:
    """The prices a symbol's fresh providers make acceptable: within ``limit`` of ``center``.

    ``center`` is the consensus of their latest prices (``scoring.consensus``), ``width``
    their spread floored at ``floor_bps`` of the center, ``limit`` that times ``mads``.
    """

    center: float
    width: float
    limit: float
    providers: int

    def admits(self, price: float) -> bool:
        """Whether ``price`` is within the band."""
        return abs(price - self.center) <= self.limit

    def refuse(self, price: float) -> Refusal | None:
        """``outlier`` if ``price`` is outside the band, with how far it is."""
        if self.admits(price):
            return None
        distance = abs(price - self.center)
        return "outlier", (
            f"price {price} is {distance:.6g} from consensus {self.center} of "
            f"{self.providers} providers (limit {self.limit:.6g})"
        )


def band(
    sample: Sequence[float], mads: float, floor_bps: float, reference: float | None = None
) -> Band:
    """The band of ``sample``, the latest price of every fresh provider.

    ``reference`` is the last quote's price, which breaks a tie between two equal groups
    (see ``scoring.consensus``). A strict majority of the sample within ``w`` of each other
    puts the center among them and the spread at most ``w``, so a price farther than
    ``mads * max(w, floor)`` from them is outside; a provider alone is always inside.
    """
    center = consensus(sample, reference)
    width = max(spread(sample, center), center * floor_bps / BPS)
    return Band(center, width, mads * width, len(sample))


def identities(tick: RawTick) -> list[Identity]:
    """What makes a tick a ``duplicate``: its provider and seq, and for a trade its provider
    and trade id."""
    keys: list[Identity] = [("seq", tick.provider, tick.seq)]
    if tick.kind == "TRADE" and tick.trade_id is not None:
        keys.append(("trade", tick.provider, tick.trade_id))
    return keys
