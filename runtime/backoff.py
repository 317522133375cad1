"""Retry delays: exponential backoff with jitter, the policies the services use, and the
HTTP ``Retry-After`` floor."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``base * factor**attempt`` seconds capped at ``cap``, minus up to ``jitter`` of it."""

    base: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry).

        A server's ``Retry-After`` is a floor: the delay never undercuts it.
        """
        raw = min(self.cap, self.base * self.factor ** max(attempt, 0))
        delay = raw * (1.0 - self.jitter * rng.random())
        return delay if retry_after is None else max(delay, retry_after)


RATE_LIMIT = Backoff(base=2.0, cap=120.0)
NETWORK = Backoff(base=1.0, cap=60.0)
LONG = Backoff(base=60.0, cap=900.0, jitter=0.2)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of an HTTP ``Retry-After`` header given in seconds; None when absent or a date."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
