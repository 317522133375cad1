"""Replay pacing: a record is due once the replay clock reaches its time.

The replay clock starts at ``start`` (µs) when the pacer begins and runs ``speed`` times as
fast as the event loop's clock: 1 is the original pace, 10 ten times faster. A speed of
``None`` is no pacing: every record is due as soon as it is read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Pacer:
    """The replay clock of one replay: ``start`` (µs) at loop time ``began`` (s), which may
    be set once the replay's first records are read."""

    start: int
    speed: float | None
    began: float = 0.0

    def clock(self, now: float) -> float | None:
        """The replay time (µs) reached at loop time ``now``; None without pacing."""
        if self.speed is None:
            return None
        return self.start + (now - self.began) * (self.speed * 1_000_000)

    def wait(self, time_us: int, now: float) -> float:
        """Seconds from loop time ``now`` until a record of time ``time_us`` is due (none
        left once it is 0 or less; always 0 without pacing)."""
        if self.speed is None:
            return 0.0
        return self.began + (time_us - self.start) / 1_000_000 / self.speed - now
