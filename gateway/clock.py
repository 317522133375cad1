"""One clock per interval for the whole gateway, instead of a timer task per subscription.

A cadence of ``interval`` seconds divides each interval into at most :data:`MAX_SLOTS`
ticks of about :data:`RESOLUTION` seconds or more and wakes once per tick that has work, on the
event loop's timer (no task). Whatever registers with it (a subscription's pacing, a
connection's heartbeat) joins the slot of the first tick at least one interval away and is
called once per interval from then on: a fixed cadence that does not drift, and everything
due at the same tick is served in one pass. A pass that runs late serves each slot it
missed once and skips whole intervals it missed, so nothing is called twice in one pass.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Hashable

log = logging.getLogger("fiml.gateway")

RESOLUTION = 0.01
MAX_SLOTS = 100

Due = Callable[[], None]


def slots_per_interval(interval: float) -> int:
    """How many ticks one interval has: ticks of about :data:`RESOLUTION`, at most
    :data:`MAX_SLOTS`."""
    return max(1, min(MAX_SLOTS, round(interval / RESOLUTION)))


def first_tick(elapsed: float, tick: float, slots: int) -> int:
    """The first tick at least one interval (``slots`` ticks) after ``elapsed`` seconds
    since the cadence's origin."""
    return math.ceil(elapsed / tick) + slots


def due_ticks(served: int, elapsed: float, tick: float, slots: int) -> range:
    """The ticks a pass at ``elapsed`` serves, ``served`` being the first not served yet:
    every tick whose time has come, but only the last interval of them. (A timer may fire
    a hair early: a tick a millionth of a tick away counts as come.)"""
    last = math.floor(elapsed / tick + 1e-6)
    return range(max(served, last - slots + 1), last + 1)


class Cadence:
    """Everything called every ``interval`` seconds, by slot."""

    def __init__(self, interval: float, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.slots = slots_per_interval(interval)
        self.tick = interval / self.slots
        self.origin = loop.time()
        self.buckets: dict[int, dict[Hashable, tuple[Due, int]]] = {}
        self.size = 0
        self.served = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_tick = 0

    def add(self, key: Hashable, due: Due) -> int:
        """Call ``due`` from one interval from now on; returns its slot."""
        start = first_tick(self.loop.time() - self.origin, self.tick, self.slots)
        slot = start % self.slots
        self.buckets.setdefault(slot, {})[key] = (due, start)
        self.size += 1
        if self.timer is None or start < self.timer_tick:
            self._schedule(start)
        return slot

    def remove(self, key: Hashable, slot: int) -> None:
        """Stop calling what ``key`` registered in ``slot``."""
        bucket = self.buckets[slot]
        del bucket[key]
        self.size -= 1
        if not bucket:
            del self.buckets[slot]

    def close(self) -> None:
        """Cancel the pending wake-up."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _schedule(self, tick: int) -> None:
        self.close()
        self.timer_tick = tick
        self.timer = self.loop.call_at(self.origin + tick * self.tick, self._fire)

    def _fire(self) -> None:
        self.timer = None
        ticks = due_ticks(self.served, self.loop.time() - self.origin, self.tick, self.slots)
        for tick in ticks:
            bucket = self.buckets.get(tick % self.slots)
            if bucket:
                for due, start in list(bucket.values()):
                    if start <= tick:
                        _call(due)
        self.served = max(self.served, ticks.stop)
        busy = [(slot - self.served) % self.slots for slot in self.buckets]
        if busy:
            self._schedule(self.served + min(busy))


def _call(due: Due) -> None:
    try:
        due()
    except Exception:  # one failing callee must not stop the others' cadence
        log.exception("a paced call failed")


class Clocks:
    """The gateway's cadences, one per interval, created on first use and dropped when
    nothing uses them."""

    def __init__(self) -> None:
        self.cadences: dict[float, Cadence] = {}
        self.where: dict[Hashable, tuple[float, int]] = {}

    def start(self, key: Hashable, interval: float, due: Due) -> None:
        """Call ``due`` every ``interval`` seconds, from one interval after now, until
        :meth:`stop` with the same ``key``."""
        cadence = self.cadences.get(interval)
        if cadence is None:
            cadence = self.cadences[interval] = Cadence(interval, asyncio.get_running_loop())
        self.where[key] = (interval, cadence.add(key, due))

    def stop(self, key: Hashable) -> None:
        """Stop the calls ``key`` started; nothing if it started none."""
        found = self.where.pop(key, None)
        if found is None:
            return
        interval, slot = found
        cadence = self.cadences[interval]
        cadence.remove(key, slot)
        if not cadence.size:
            cadence.close()
            del self.cadences[interval]

    def close(self) -> None:
        """Stop every cadence (the app ends)."""
        for cadence in self.cadences.values():
            cadence.close()
        self.cadences.clear()
        self.where.clear()
