"""Provider adapters: each runs on its own and hands batches of records to an emit callback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from schemas import ProviderStatus, RawTick
from schemas.books import BookEvent
from schemas.news import NewsItem

Batch = Sequence[RawTick | ProviderStatus | NewsItem | BookEvent]
Emit = Callable[[Batch], Awaitable[None]]


class Provider(Protocol):
    """A source of ticks, statuses, news items and book events, run until ``stop`` is set."""

    name: str

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Report batches through ``emit``; never raise for a provider-side failure."""

    def set_demand(self, extra: frozenset[str]) -> None:
        """Serve these symbols too, beyond the configured ones (those it can serve)."""
