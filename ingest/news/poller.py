"""The loop every news poller runs: one planned request a slot, new items out, statuses.

A poller is a :class:`~ingest.providers.base.RetryingProvider`: a failed request ends the
session with a status and a backoff, and the next session waits for the next slot (a
failed request has spent its slot). Each slot's request is the planner's
(:func:`~ingest.news.planner.plan`); items already emitted with the same canonical URL,
headline and symbols are not emitted again (the last ``SEEN_LIMIT`` are remembered), so a
poll that finds nothing new writes nothing but an UP status when one is due. Skipped items
are counted by reason in ``skipped`` and ``fiml_news_skipped_total``, and logged. A
poller's name, in its statuses, is its provider's with ``-news`` (``fmp-news``): a news
failure never marks the provider's quotes down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Iterable

from ingest.news.normalize import Parsed, SymbolMap
from ingest.news.planner import MICROS, Budget, NewsRequest, plan, polled_symbols, symbol_map
from ingest.news.tickers import news_targets
from ingest.providers import Emit
from ingest.providers.base import RetryingProvider
from runtime.clock import now_micros
from runtime.metrics import NEWS_SKIPPED
from schemas import ProviderStatus
from schemas.news import NewsItem

log = logging.getLogger("fiml.ingest.news")

SEEN_LIMIT = 5000


class NewsPoller(RetryingProvider):
    """Polls one provider's news within its budget. Subclasses implement ``fetch`` and
    ``classify``."""

    def __init__(
        self, name: str, symbols: Iterable[str], budget: Budget, rng: random.Random | None = None
    ) -> None:
        self.provider = name
        super().__init__(f"{name}-news", symbols, rng)
        self.budget = budget
        self.extra: frozenset[str] = frozenset()
        self.subscribed: frozenset[str] = frozenset()
        self.done_slot: int | None = None
        self.seen: dict[tuple[str, str, tuple[str, ...]], None] = {}
        self.skipped: Counter[str] = Counter()

    def accepts(self, symbol: str) -> bool:
        """Whether the provider has a news feed for ``symbol``."""
        return bool(news_targets(self.provider, [symbol]))

    def set_demand(self, extra: frozenset[str]) -> None:
        """Poll these symbols too, beyond the configured ones (those it has news for)."""
        super().set_demand(extra)
        self.extra = frozenset(symbol for symbol in extra if self.accepts(symbol))

    def set_subscribed(self, symbols: frozenset[str]) -> None:
        """The symbols clients subscribe to now, configured or not: with the extra ones of
        :meth:`set_demand`, what a budget spent on demand alone polls."""
        subscribed = frozenset(symbol for symbol in symbols if self.accepts(symbol))
        if subscribed != self.subscribed:
            self.subscribed = subscribed
            self.symbols_changed.set()

    async def fetch(self, request: NewsRequest, symbols: SymbolMap, ts_ingest: int) -> Parsed:
        """Make ``request`` and parse its answer; raise on any failure."""
        raise NotImplementedError

    async def session(self, emit: Emit, stop: asyncio.Event) -> None:
        """Make each slot's request, waking at the next slot or when the symbols change."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self.symbols_changed.clear()
            wanted = self.extra | self.subscribed
            targets = news_targets(
                self.provider, polled_symbols(self.budget, self.base_symbols, wanted)
            )
            now = now_micros()
            planned = plan(self.budget, targets, now)
            if planned.request is not None and planned.slot != self.done_slot:
                self.done_slot = planned.slot
                started = loop.time()
                parsed = await self.fetch(planned.request, symbol_map(targets), now)
                self.count_skipped(planned.request, parsed)
                latency_ms = (loop.time() - started) * 1000
                batch: list[NewsItem | ProviderStatus] = [*self.up_status(latency_ms)]
                batch.extend(self.fresh(parsed.items))
                if batch:
                    await emit(batch)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.symbols_changed.wait(), max(0.0, (planned.next_us - now_micros()) / MICROS)
                )

    def fresh(self, items: Iterable[NewsItem]) -> list[NewsItem]:
        """The items not emitted before (by canonical URL, headline and symbols)."""
        new = []
        for item in items:
            key = (item.canonical_url, item.headline, tuple(item.symbols))
            if key in self.seen:
                continue
            self.seen[key] = None
            if len(self.seen) > SEEN_LIMIT:
                del self.seen[next(iter(self.seen))]
            new.append(item)
        return new

    def count_skipped(self, request: NewsRequest, parsed: Parsed) -> None:
        """Add the skipped items to ``skipped`` and log them with their reasons."""
        if not parsed.skipped and not parsed.dropped:
            return
        self.skipped.update(parsed.skipped)
        for reason, count in parsed.skipped.items():
            NEWS_SKIPPED.labels(self.provider, reason).inc(count)
        log.info(
            "%s news for %s: %d items, skipped %s, values dropped %s",
            self.name,
            ",".join(request.tickers),
            len(parsed.items),
            dict(parsed.skipped),
            dict(parsed.dropped),
            extra={"provider": self.name},
        )
