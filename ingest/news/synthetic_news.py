"""Synthetic news: a story for one of the configured symbols every few seconds, no network.

Slot ``k`` of ``period_s`` seconds counted from the epoch carries one story about symbol
``k mod n`` of the configured symbols (with the next one too every third slot), as two
copies ingested at the slot's start: the story's own URL published a minute before, and
the same URL on a mobile host with a tracking parameter and a slightly different headline
published at the slot's start, as two providers would carry it. Deduplication makes
them one story. The stories are a function of the seed and the slot alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable

from ingest.providers import Emit
from runtime.clock import now_micros
from schemas import ProviderStatus
from schemas.news import NewsItem, canonical_url, story_id

PROVIDER = "synthetic"
MICROS = 1_000_000
WORDS = (
    "earnings",
    "revenue",
    "guidance",
    "buyback",
    "dividend",
    "merger",
    "lawsuit",
    "outlook",
    "margins",
    "supply",
    "demand",
    "forecast",
    "upgrade",
    "downgrade",
    "rally",
    "selloff",
    "chips",
    "cloud",
    "retail",
    "energy",
    "rates",
    "inflation",
    "tariffs",
    "hiring",
    "layoffs",
    "launch",
    "recall",
    "patent",
    "deal",
    "stake",
    "filing",
    "record",
    "quarter",
    "growth",
    "slowdown",
    "rebound",
    "volatility",
    "inflows",
    "outflows",
    "split",
)
"""The words of synthetic headlines: five drawn at random make two stories' headlines far
apart, so distinct stories stay distinct."""


def synthetic_story(
    symbols: tuple[str, ...], seed: int, slot: int, period_us: int
) -> list[NewsItem]:
    """The two copies of slot ``slot``'s story."""
    rng = random.Random(seed * 1_000_003 + slot)
    first = symbols[slot % len(symbols)]
    named = sorted({first, symbols[(slot + 1) % len(symbols)]} if slot % 3 == 0 else {first})
    sentiment = round(rng.uniform(-1.0, 1.0), 2)
    headline = " ".join([first, *rng.sample(WORDS, 5)])
    slug = "".join(c if c.isalnum() else "-" for c in first.lower())
    url = f"https://news.example.com/{slug}/{slot}"
    published = slot * period_us
    copies = (
        (url, headline, published - 60 * MICROS),
        (
            f"https://m.news.example.com/{slug}/{slot}?utm_source=feed",
            f"{headline} - update",
            published,
        ),
    )
    return [
        NewsItem(
            story_id(canonical_url(link) or link),
            text,
            f"Synthetic story {slot} about {', '.join(named)}.",
            link,
            canonical_url(link) or link,
            "FIML synthetic wire",
            at,
            published,
            [PROVIDER],
            named,
            sentiment,
            {symbol: sentiment for symbol in named},
            {symbol: 1.0 for symbol in named},
            "en",
        )
        for link, text, at in copies
    ]


class SyntheticNews:
    """Writes slot by slot the synthetic stories of the configured symbols."""

    name = "synthetic-news"

    def __init__(self, symbols: Iterable[str], seed: int, period_s: float) -> None:
        self.symbols = tuple(symbols)
        self.seed = seed
        self.period_us = max(1, round(period_s * MICROS))

    def set_demand(self, extra: frozenset[str]) -> None:
        """Stories are about the configured symbols only."""

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Emit each slot's story as the clock reaches it, until ``stop``."""
        slot = now_micros() // self.period_us
        await emit([ProviderStatus(self.name, now_micros(), "UP")])
        while not stop.is_set():
            await emit(synthetic_story(self.symbols, self.seed, slot, self.period_us))
            slot += 1
            delay = (slot * self.period_us - now_micros()) / MICROS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, delay))
