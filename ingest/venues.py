"""The synthetic market's venues: how each distorts the true price, and the faults that can
be injected into them (setting ``FIML_SYNTHETIC_FAULTS``): ``down`` (down 4 s in every
12 s), ``lag`` (event times 1.5 s late), ``outliers`` (5% of prices 5% off) and
``duplicates`` (5% of ticks sent twice)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Venue:
    """How one simulated venue distorts the true price."""

    name: str
    noise_bps: float
    latency_ms: float
    spread_bps: float
    trade_probability: float
    outages_per_hour: float
    outage_seconds: float
    down_every_s: float = 0.0
    lag_ms: float = 0.0
    outlier_probability: float = 0.0
    duplicate_probability: float = 0.0


FAULTS: dict[str, dict[str, Any]] = {
    "down": {"down_every_s": 12.0, "outage_seconds": 4.0},
    "lag": {"lag_ms": 1500.0},
    "outliers": {"outlier_probability": 0.05},
    "duplicates": {"duplicate_probability": 0.05},
}
OUTLIER_FACTOR = 0.05


DEFAULT_VENUES = (
    Venue(
        "synthetic:alpha",
        noise_bps=0.5,
        latency_ms=15,
        spread_bps=2,
        trade_probability=0.3,
        outages_per_hour=2,
        outage_seconds=20,
    ),
    Venue(
        "synthetic:beta",
        noise_bps=1.5,
        latency_ms=60,
        spread_bps=4,
        trade_probability=0.2,
        outages_per_hour=4,
        outage_seconds=15,
    ),
    Venue(
        "synthetic:gamma",
        noise_bps=3.0,
        latency_ms=150,
        spread_bps=8,
        trade_probability=0.1,
        outages_per_hour=6,
        outage_seconds=30,
    ),
)


def with_faults(venues: Iterable[Venue], specs: Iterable[str]) -> tuple[Venue, ...]:
    """``venues`` with faults applied; each spec is ``venue=fault[+fault...]``.

    Raises ValueError naming ``FIML_SYNTHETIC_FAULTS`` for an unknown venue or fault.
    """
    by_name = {venue.name: venue for venue in venues}
    for spec in specs:
        name, _, faults = spec.partition("=")
        if name not in by_name:
            raise ValueError(f"FIML_SYNTHETIC_FAULTS: unknown venue {name!r} in {spec!r}")
        for fault in faults.split("+"):
            if fault not in FAULTS:
                known = ", ".join(FAULTS)
                raise ValueError(
                    f"FIML_SYNTHETIC_FAULTS: unknown fault {fault!r} in {spec!r} (known: {known})"
                )
            by_name[name] = dataclasses.replace(by_name[name], **FAULTS[fault])
    return tuple(by_name.values())
