"""The pure parts of the latency, fan-out and soak benchmarks: what their figures rest on."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from fanout import broadcast_text, due_slot, hopeless, message_micros, served
from harness import percentiles
from latency import SYMBOLS, TRADE_ROUND, iso_micros, make_tick
from soak import growth

from gateway.items import price_item, trade_item
from schemas.records import Quote, Trade
from tests.factories import T0
from tests.support_engine import Harness


def test_every_load_tick_becomes_a_value_that_names_its_ingest_time():
    """The latency benchmark relies on it: each quote tick drives a quote and each trade
    tick makes a trade, and the item's timestamp is the tick's ts_ingest."""
    harness = Harness()
    ticks = [make_tick(n, T0 + n * 100) for n in range(len(SYMBOLS) * TRADE_ROUND * 2)]
    outputs = harness.feed(ticks)
    quotes = [out for out in outputs if isinstance(out, Quote)]
    trades = [out for out in outputs if isinstance(out, Trade)]
    quote_ticks = [t for t in ticks if t.kind == "QUOTE"]
    trade_ticks = [t for t in ticks if t.kind == "TRADE"]
    assert len(trade_ticks) == 2 * len(SYMBOLS)
    assert [q.ts_ingest for q in quotes] == [t.ts_ingest for t in quote_ticks]
    assert [t.ts_ingest for t in trades] == [t.ts_ingest for t in trade_ticks]
    assert {iso_micros(price_item(q)["timestamp"]) for q in quotes} == {
        t.ts_ingest for t in quote_ticks
    }
    assert iso_micros(trade_item(trades[0])["timestamp"]) == trade_ticks[0].ts_ingest


def test_percentiles_are_nearest_rank():
    assert percentiles(range(1, 1001)) == {"p50": 500, "p99": 990, "p99_9": 999}
    assert percentiles([7.0], (50, 99)) == {"p50": 7.0, "p99": 7.0}
    assert percentiles([]) == {"p50": None, "p99": None, "p99_9": None}


def test_a_message_is_timed_against_the_slot_it_was_due_at():
    second = 1_000_000
    assert due_slot(T0, T0 + 3 * second + 300_000, second) == T0 + 3 * second
    assert due_slot(T0, T0 + 3 * second - 5_000, second) == T0 + 3 * second
    assert message_micros(broadcast_text(T0)) == T0


def test_served_is_the_largest_step_that_met_every_condition_and_far_misses_stop_the_steps():
    def step(clients, p99, messages=None, connected=None):
        return {
            "clients": clients,
            "connected": connected or clients,
            "lag_ms": {"p99": p99},
            "messages_per_s": messages or clients,
            "due_per_s": clients,
        }

    assert served([step(100, 20.0), step(200, 240.0), step(400, 900.0)]) == 200
    assert served([step(100, 20.0), step(200, 20.0, messages=150)]) == 100
    assert served([step(100, 20.0, connected=90)]) == 0
    assert not hopeless(step(200, 240.0)) and not hopeless(step(200, 900.0))
    assert hopeless(step(200, 1200.0))
    assert hopeless(step(200, 20.0, messages=90)) and hopeless(step(200, None))
    assert hopeless(step(200, 20.0, connected=150))


def test_memory_growth_is_measured_after_the_warm_up():
    assert growth([50, 100, 100, 100, 100, 100, 100], warm=1) == 0.0
    assert growth([100, 100, 100, 110, 110, 110], warm=0) == 0.1
    assert growth([100, 200], warm=1) is None
