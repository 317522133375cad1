"""The gateway's shared clocks (gateway/clock.py): one cadence per interval serves every
registered call on its own fixed, non-drifting slot, those due at the same tick in one pass,
each at most once per pass however late the pass runs."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.clock import (
    MAX_SLOTS,
    Cadence,
    Clocks,
    due_ticks,
    first_tick,
    slots_per_interval,
)

INTERVAL = 0.05
PROPERTY = settings(max_examples=300, deadline=None)
intervals = st.floats(min_value=0.001, max_value=60.0)
elapsed_times = st.floats(min_value=0.0, max_value=1e5)


@PROPERTY
@given(intervals, elapsed_times)
def test_the_first_slot_is_the_first_tick_one_interval_away(
    interval: float, elapsed: float
) -> None:
    slots = slots_per_interval(interval)
    tick = interval / slots
    assert 1 <= slots <= MAX_SLOTS
    first = first_tick(elapsed, tick, slots)
    assert first * tick >= elapsed + interval - 1e-9 * max(1.0, elapsed)
    assert first * tick < elapsed + interval + tick + 1e-9 * max(1.0, elapsed)


@PROPERTY
@given(intervals, elapsed_times, st.integers(min_value=0, max_value=10**9))
def test_a_pass_serves_the_ticks_come_each_slot_at_most_once(
    interval: float, elapsed: float, served: int
) -> None:
    slots = slots_per_interval(interval)
    tick = interval / slots
    ticks = due_ticks(served, elapsed, tick, slots)
    assert len(ticks) <= slots and ticks.step == 1
    assert len({t % slots for t in ticks}) == len(ticks)
    if ticks:
        assert ticks.start >= served and ticks[-1] * tick <= elapsed + tick * 1e-5
    assert ticks.stop * tick > elapsed or ticks.stop <= served


class FakeLoop:
    """The two things a cadence asks of its event loop, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[FakeTimer] = []
        self.fired = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        self.timers.append(timer)
        return timer

    def advance(self, to: float, late: bool = False) -> None:
        """Run the timers due by ``to`` on time, or all at ``to`` when ``late``."""
        while due := [t for t in self.timers if not t.cancelled and t.when <= to]:
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = to if late else max(self.now, timer.when)
            self.fired += 1
            timer.callback()
        self.now = to


@dataclass
class FakeTimer:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


def cadence_with_calls(interval: float) -> tuple[FakeLoop, Cadence, dict[str, list[float]]]:
    loop = FakeLoop()
    return loop, Cadence(interval, cast(asyncio.AbstractEventLoop, loop)), {}


def register(loop: FakeLoop, cadence: Cadence, calls: dict[str, list[float]], key: str) -> None:
    calls[key] = []
    cadence.add(key, lambda: calls[key].append(loop.now))


def test_calls_keep_their_own_fixed_slot_and_those_due_together_run_in_one_pass() -> None:
    loop, cadence, calls = cadence_with_calls(INTERVAL)
    began = loop.now
    loop.advance(began + 0.0123)
    for n in range(20):
        register(loop, cadence, calls, f"early-{n}")
        loop.now += 0.0001
    loop.advance(began + 0.0371)
    register(loop, cadence, calls, "late")
    loop.advance(began + 1.0)
    early = [calls[f"early-{n}"] for n in range(20)]
    assert all(times == early[0] for times in early)  # the same passes
    assert early[0][0] == pytest.approx(began + 0.02 + INTERVAL)  # the tick after 0.0143
    assert calls["late"][0] == pytest.approx(began + 0.04 + INTERVAL)
    for times in (early[0], calls["late"]):  # fixed cadence: exactly one interval apart
        assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx(
            [INTERVAL] * (len(times) - 1)
        )
    assert len(early[0]) == len(calls["late"]) == 19
    assert loop.fired == 38  # one wake-up per slot due, not one per call


def test_a_late_pass_calls_each_once_and_the_cadence_carries_on() -> None:
    loop, cadence, calls = cadence_with_calls(INTERVAL)
    began = loop.now
    register(loop, cadence, calls, "a")
    loop.advance(began + 0.025)
    register(loop, cadence, calls, "b")
    loop.advance(began + 0.06)
    assert calls == {"a": [pytest.approx(began + 0.05)], "b": []}
    loop.advance(began + 0.263, late=True)  # the loop was blocked for four intervals
    assert calls["a"][1:] == [pytest.approx(began + 0.263)]
    assert calls["b"] == [pytest.approx(began + 0.263)]
    loop.advance(began + 0.36)
    assert calls["a"][2:] == pytest.approx([began + 0.3, began + 0.35])
    assert calls["b"][1:] == pytest.approx([began + 0.28, began + 0.33])


def test_removed_calls_end_and_a_failing_call_stops_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop, cadence, calls = cadence_with_calls(INTERVAL)
    calls["fail"] = []

    def fail() -> None:
        calls["fail"].append(loop.now)
        raise RuntimeError("boom")

    slot = cadence.add("fail", fail)
    register(loop, cadence, calls, "ok")
    with caplog.at_level(logging.ERROR, "fiml.gateway"):
        loop.advance(loop.now + 2.5 * INTERVAL)
    assert len(calls["ok"]) == len(calls["fail"]) == 2
    assert "a paced call failed" in caplog.text
    cadence.remove("fail", slot)
    loop.advance(loop.now + 2 * INTERVAL)
    assert len(calls["ok"]) == 4 and len(calls["fail"]) == 2
    assert cadence.size == 1


async def test_clocks_run_one_cadence_per_interval_on_the_event_loop() -> None:
    clocks = Clocks()
    calls: list[str] = []
    clocks.start("a", INTERVAL, lambda: calls.append("a"))
    clocks.start("b", INTERVAL, lambda: calls.append("b"))
    clocks.start("c", 2 * INTERVAL, lambda: calls.append("c"))
    assert set(clocks.cadences) == {INTERVAL, 2 * INTERVAL}
    await asyncio.sleep(2.5 * INTERVAL)
    assert calls.count("a") >= 1 and calls.count("a") == calls.count("b")
    clocks.stop("a")
    clocks.stop("b")
    clocks.stop("b")  # stopping twice is harmless
    assert set(clocks.cadences) == {2 * INTERVAL}
    calls.clear()
    await asyncio.sleep(2.5 * INTERVAL)
    assert calls and set(calls) == {"c"}
    clocks.stop("c")
    assert not clocks.cadences and not clocks.where
