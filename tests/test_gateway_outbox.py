"""A connection's outbox (gateway/outbox.py) behaves as the bounded asyncio.Queue it replaces:
first in, first out, ``QueueFull`` past its limit, a waiting writer woken by the next item."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.outbox import Outbox


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=20), st.lists(st.booleans(), max_size=60))
def test_it_keeps_order_and_its_bound_like_a_bounded_queue(limit: int, puts: list[bool]) -> None:
    outbox: Outbox[int] = Outbox(limit)
    queue: asyncio.Queue[int] = asyncio.Queue(limit)
    for n, put in enumerate(puts):
        if put:
            full = [False, False]
            for k, target in enumerate((outbox, queue)):
                try:
                    target.put_nowait(n)
                except asyncio.QueueFull:
                    full[k] = True
            assert full[0] == full[1]
        elif queue.qsize():
            assert outbox.items.popleft() == queue.get_nowait()
        assert outbox.qsize() == queue.qsize() <= limit


async def test_a_waiting_writer_gets_the_next_item_and_may_be_cancelled() -> None:
    outbox: Outbox[str] = Outbox(0)
    getter = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    assert not getter.done() and outbox.waiter is not None
    outbox.put_nowait("first")
    outbox.put_nowait("second")
    assert await getter == "first"
    assert await outbox.get() == "second"
    cancelled = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert outbox.waiter is None
    for n in range(5000):  # not positive: no bound
        outbox.put_nowait(str(n))
    assert outbox.qsize() == 5000 and await outbox.get() == "0"
