"""What a connection is told about its quote symbols besides their data: a symbol without
updates for ``stale_after_seconds`` goes stale and back to live, and providers of its quotes
change state (``gateway/providers.py``). Pure: times are passed in."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from gateway.providers import Notice, provider_notices


class SymbolWatch:
    """The quote symbols of one connection, since when each is watched, which are stale,
    and which provider states the client was told."""

    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self.watched_since: dict[str, float] = {}
        self.stale: set[str] = set()
        self.check_at = math.inf
        self.told: dict[tuple[str, str], str] = {}
        self.providers_checked: tuple[int, int] | None = None

    def watch(self, symbols: Iterable[str], now: float) -> None:
        """Watch ``symbols`` too, from ``now`` on (a symbol watched already keeps its time)."""
        for symbol in symbols:
            self.watched_since.setdefault(symbol, now)
        self.check_at = min(self.check_at, now + self.stale_after)

    def keep(self, symbols: set[str]) -> None:
        """Stop watching every symbol not in ``symbols``."""
        for symbol in list(self.watched_since):
            if symbol not in symbols:
                del self.watched_since[symbol]
                self.stale.discard(symbol)

    def due(self, now: float) -> bool:
        """Whether a symbol is stale or could have gone stale by ``now``."""
        return bool(self.stale) or now >= self.check_at

    def changes(self, now: float, received_at: Mapping[str, float]) -> list[tuple[str, bool]]:
        """``(symbol, stale)`` for every symbol that went stale or live again by ``now``,
        given when each last received a quote; notes when the next could go stale."""
        limit = self.stale_after
        self.check_at = math.inf
        changed = []
        for symbol, since in self.watched_since.items():
            last = max(received_at.get(symbol, since), since)
            is_stale = now - last > limit
            if not is_stale:
                self.check_at = min(self.check_at, last + limit)
            if is_stale == (symbol in self.stale):
                continue
            if is_stale:
                self.stale.add(symbol)
            else:
                self.stale.discard(symbol)
            changed.append((symbol, is_stale))
        return changed

    def notices(
        self,
        version: int,
        serving: Callable[[str], Iterable[str]],
        state: Callable[[str], str],
    ) -> list[Notice]:
        """Provider changes of the watched symbols not told yet, once per statuses
        ``version`` and set of watched symbols; ``serving(symbol)`` names the providers of
        its latest quote."""
        checked = (version, len(self.watched_since))
        if checked == self.providers_checked:
            return []
        self.providers_checked = checked
        return provider_notices(self.watched_since, serving, state, self.told)
