"""Which demanded symbols a live provider takes: each is checked once before it is polled.

Any process may write the demand topic, so a live provider (ccxt, yfinance, Alpha Vantage,
FMP) serves a demanded symbol only after a check (the exchange's loaded markets, or one
lookup request) accepted it. :class:`Admission` is the pure part: the verdicts, kept for a
stated time (an acceptance ``FIML_DEMAND_ACCEPTED_SECONDS``, a refusal
``FIML_DEMAND_REFUSED_SECONDS``), and a token bucket that allows at most
``FIML_DEMAND_CHECKS_PER_MINUTE`` lookups a minute (bursts of as many), so a flood of junk
costs a bounded number of requests. An accepted symbol whose verdict has expired is still
served while it is checked again. Configured symbols are trusted and never checked.
A refusal is counted in ``fiml_demand_refused_total`` and logged, at most
``LOG_LINES_PER_MINUTE`` lines a minute per provider.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.metrics import DEMAND_REFUSED
from runtime.settings import Settings

log = logging.getLogger("fiml.ingest.admission")

MAX_VERDICTS = 10_000
LOG_LINES_PER_MINUTE = 5


@dataclass(frozen=True)
class Verdict:
    """A check's answer: accepted, or refused for ``reason`` (a metric label)."""

    ok: bool
    reason: str = ""
    checked_at: float = 0.0


ACCEPTED = Verdict(True)


def refused(reason: str) -> Verdict:
    """A refusal for ``reason``: not_listed, not_spot, inactive, not_found."""
    return Verdict(False, reason)


class Admission:
    """The verdicts of one provider's checks and its bound on lookups; times in seconds of
    a monotonic clock, passed in."""

    def __init__(
        self,
        provider: str,
        *,
        per_minute: int | None,
        accepted_s: float,
        refused_s: float,
        max_verdicts: int = MAX_VERDICTS,
    ) -> None:
        self.provider = provider
        self.per_minute = per_minute
        self.accepted_s = accepted_s
        self.refused_s = refused_s
        self.max_verdicts = max_verdicts
        self.verdicts: dict[str, Verdict] = {}
        self.failed: dict[str, float] = {}  # when a symbol's check last could not tell
        self.tokens = float(per_minute or 0)
        self.refilled_at: float | None = None
        self.log_window = float("-inf")
        self.log_lines = 0
        self.unlogged = 0

    @classmethod
    def from_settings(cls, provider: str, settings: Settings, *, bounded: bool = True) -> Admission:
        """The admission of ``provider``; ``bounded=False`` for checks that cost no request."""
        return cls(
            provider,
            per_minute=settings.demand_checks_per_minute if bounded else None,
            accepted_s=settings.demand_accepted_seconds,
            refused_s=settings.demand_refused_seconds,
        )

    def admitted(self, symbol: str) -> bool:
        """Whether the last check of ``symbol`` accepted it (expired or not)."""
        verdict = self.verdicts.get(symbol)
        return verdict is not None and verdict.ok

    def due(self, symbols: Iterable[str], now: float) -> list[str]:
        """The symbols of ``symbols`` never checked or whose verdict expired, in order, those
        whose last check could not tell last: a symbol whose lookup keeps failing never
        holds up the others."""
        due = [symbol for symbol in symbols if not self._fresh(symbol, now)]
        return sorted(due, key=lambda symbol: self.failed.get(symbol, float("-inf")))

    def could_not_tell(self, symbol: str, now: float) -> None:
        """Note that a check of ``symbol`` at ``now`` failed (no verdict is kept)."""
        self.failed.pop(symbol, None)
        self.failed[symbol] = now
        if len(self.failed) > self.max_verdicts:
            del self.failed[next(iter(self.failed))]

    def take(self, now: float) -> bool:
        """Spend one lookup of the bound if one is left at ``now``."""
        if self.per_minute is None:
            return True
        if self.refilled_at is not None:
            elapsed = max(0.0, now - self.refilled_at)
            self.tokens = min(float(self.per_minute), self.tokens + elapsed * self.per_minute / 60)
        self.refilled_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def record(self, symbol: str, verdict: Verdict, now: float) -> None:
        """Keep the verdict of a check made at ``now``; count and log a refusal."""
        self.failed.pop(symbol, None)
        self.verdicts.pop(symbol, None)
        self.verdicts[symbol] = Verdict(verdict.ok, verdict.reason, now)
        if len(self.verdicts) > self.max_verdicts:
            del self.verdicts[next(iter(self.verdicts))]
        if not verdict.ok:
            DEMAND_REFUSED.labels(self.provider, verdict.reason).inc()
            self._log_refusal(symbol, verdict.reason, now)

    def forget(self, demanded: Iterable[str], now: float) -> None:
        """Drop the expired verdicts of symbols no longer demanded."""
        keep = frozenset(demanded)
        for symbol in [s for s in self.verdicts if s not in keep and not self._fresh(s, now)]:
            del self.verdicts[symbol]
        for symbol in [s for s in self.failed if s not in keep]:
            del self.failed[symbol]

    def _fresh(self, symbol: str, now: float) -> bool:
        verdict = self.verdicts.get(symbol)
        if verdict is None:
            return False
        keep = self.accepted_s if verdict.ok else self.refused_s
        return now - verdict.checked_at < keep

    def _log_refusal(self, symbol: str, reason: str, now: float) -> None:
        if now - self.log_window >= 60:
            self.log_window, self.log_lines = now, 0
        if self.log_lines >= LOG_LINES_PER_MINUTE:
            self.unlogged += 1
            return
        self.log_lines += 1
        more = f" ({self.unlogged} more refused unlogged before)" if self.unlogged else ""
        self.unlogged = 0
        log.warning(
            "%s refuses demanded symbol %r (%s) for %.0f s; it is not polled%s",
            self.provider,
            symbol[:40],
            reason,
            self.refused_s,
            more,
            extra={"provider": self.provider},
        )
