"""Rate limiting of client messages."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; times are in seconds."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float, count: int = 1) -> bool:
        """Take ``count`` tokens if there are so many (none otherwise)."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= count:
            self.tokens -= count
            return True
        return False


def new_symbol_bucket(per_minute: int, now: float) -> TokenBucket | None:
    """The pace of new symbols on one connection: ``per_minute``, all of them at once if
    need be (None for 0: no limit)."""
    return TokenBucket(per_minute / 60, per_minute, now) if per_minute else None
