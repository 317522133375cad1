"""Rate limiting of client messages."""

from __future__ import annotations

from collections import deque


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; times are in seconds."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float) -> bool:
        """Take one token if there is one."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SlidingLimit:
    """At most ``limit`` units in any ``window`` seconds; times are in seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.taken: deque[tuple[float, int]] = deque()
        self.total = 0

    def take(self, now: float, count: int) -> bool:
        """Take ``count`` units if the window has room for them (none otherwise)."""
        while self.taken and self.taken[0][0] <= now - self.window:
            self.total -= self.taken.popleft()[1]
        if self.total + count > self.limit:
            return False
        self.taken.append((now, count))
        self.total += count
        return True


def new_symbol_limit(per_minute: int) -> SlidingLimit | None:
    """The new symbols one connection may add: ``per_minute`` in any minute (None for 0:
    no limit)."""
    return SlidingLimit(per_minute, 60.0) if per_minute else None
