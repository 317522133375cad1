"""A connection's bounded outbox: what of ``asyncio.Queue`` one writer needs, in fewer objects.

``asyncio.Queue`` keeps three deques and an ``Event`` (with a fourth) per queue; a
connection's outbox has one producer side that never waits and one writer task, so one
deque and, while the writer waits, one future do.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    """A FIFO of at most ``limit`` items (no bound if ``limit`` is not positive)."""

    __slots__ = ("items", "limit", "waiter")

    def __init__(self, limit: int) -> None:
        self.items: deque[T] = deque()
        self.limit = limit
        self.waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        """How many items wait."""
        return len(self.items)

    def put_nowait(self, item: T) -> None:
        """Add ``item``; raise ``asyncio.QueueFull`` if ``limit`` items wait already."""
        if 0 < self.limit <= len(self.items):
            raise asyncio.QueueFull
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> T:
        """The oldest item, waiting for one if there is none (one waiting caller at a time)."""
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.popleft()
