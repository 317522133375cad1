"""Provider status, ordered into the raw tick stream by event time.

``fiml.provider.status`` is keyed by provider, so its partitions are not those of
``fiml.ticks.raw`` and no consumer order between the two topics is deterministic. The engine
therefore never applies a status when it *arrives*: a status with event time ``s`` takes
effect in a raw partition when that partition's event time (the newest accepted tick)
passes ``s + delay``, in order of ``(ts_event, provider, state)``. A rebuild that knows every
status applies exactly the same ones at exactly the same ticks. The live worker reads the
status topic up to its end before any tick that could need a newer status (see
``arbitration/app.py``), which gives the same result as long as a status reaches the log
within ``delay - future tolerance`` of its event time; README.md states the limits.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from schemas.records import TICKS_FEED, ProviderStatus

UPTIME_SMOOTHING = 0.2
STATE_VALUE = {"UP": 1.0, "DEGRADED": 0.5, "DOWN": 0.0}


@dataclass
class ProviderHealth:
    """What the statuses of one provider say: its last state and smoothed uptime."""

    state: str = "UP"
    uptime: float = 1.0

    def apply(self, status: ProviderStatus) -> None:
        """Take one status of this provider."""
        self.state = status.state
        value = STATE_VALUE.get(status.state, 0.0)
        self.uptime += UPTIME_SMOOTHING * (value - self.uptime)

    @property
    def down(self) -> bool:
        """Whether the provider's last status said DOWN."""
        return self.state == "DOWN"


def _order(status: ProviderStatus) -> tuple[int, str, str]:
    return (status.ts_event, status.provider, status.state)


class StatusTimeline:
    """Every status read so far, sorted by event time; shared by the partition engines."""

    def __init__(self) -> None:
        self._keys: list[tuple[int, str, str]] = []
        self._statuses: list[ProviderStatus] = []

    def __len__(self) -> int:
        return len(self._statuses)

    def add(self, status: ProviderStatus) -> None:
        """Insert one status of a provider's ticks in event-time order; a status of another
        feed (its order books) says nothing of its quotes and is left out."""
        if status.feed != TICKS_FEED:
            return
        key = _order(status)
        index = bisect.bisect_right(self._keys, key)
        self._keys.insert(index, key)
        self._statuses.insert(index, status)

    def between(self, after_us: int | None, until_us: int) -> list[ProviderStatus]:
        """Statuses with ``after_us < ts_event <= until_us`` (all up to it if after is None)."""
        low = 0 if after_us is None else bisect.bisect_right(self._keys, (after_us, "\uffff"))
        high = bisect.bisect_right(self._keys, (until_us, "\uffff"))
        return self._statuses[low:high] if high > low else []
