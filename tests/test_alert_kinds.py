"""Every alert rule kind on generated event-time series, against a brute-force model.

The model recomputes each condition from the whole history (no windows, no timers) and
applies the firing rules (armed, cooldown, once) in a plain loop; the evaluator must fire
exactly the same (subject, input offset, event time) triples.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts.evaluator import AlertEvaluator
from domain.alerts.firing import EVENT_KINDS
from schemas.alerts import AlertRule
from tests.support_alerts import (
    SECOND,
    T0,
    Record,
    candle,
    quote,
    rule,
    sourced,
    status,
)

LEVEL = 100.0
PRICES = [95.0, 98.0, 99.0, 99.99, 100.0, 100.01, 101.0, 102.0, 104.0, 105.0, 110.0]
STEPS = [0, 1, 250_000, SECOND, 2 * SECOND, 3 * SECOND, 5 * SECOND, 7 * SECOND]
cooldowns = st.sampled_from([0, SECOND, 3 * SECOND, 10 * SECOND])
modes = st.sampled_from(["once", "repeat"])
created = st.sampled_from([T0 - 10 * SECOND, T0, T0 + 4 * SECOND])


def fires(rules: list[AlertRule], records: list[Record]) -> list[tuple[str, int, int]]:
    """(subject, input offset, event time) of every alert, in firing order."""
    evaluator = AlertEvaluator()
    for each in rules:
        evaluator.upsert(each)
    return [
        (a.subject, a.source_offset, a.ts_event)
        for source, record in sourced(records)
        for a in evaluator.evaluate(record, source)
    ]


def model_gate(
    conditions: list[tuple[str, int, int, object]], kind: str, cooldown: int, mode: str
) -> list[tuple[str, int, int]]:
    """Firings of one subject: conditions are (subject, offset, time, side or None)."""
    result: list[tuple[str, int, int]] = []
    armed, last, last_side = True, None, None
    for subject, offset, time, side in conditions:
        if side is None:
            armed = True
            continue
        if side != last_side:
            armed = True
        if (
            (mode == "once" and result)
            or not armed
            or (last is not None and time < last + cooldown)
        ):
            continue
        result.append((subject, offset, time))
        last, last_side, armed = time, side, kind in EVENT_KINDS
    return result


def per_subject(conditions, subjects, each_rule):
    merged = []
    for subject in subjects:
        mine = [c for c in conditions if c[0] == subject]
        merged += model_gate(mine, each_rule.kind, each_rule.cooldown_us, each_rule.mode)
    return sorted(merged, key=lambda fire: fire[1])


@st.composite
def quote_series(draw, symbols=("AAA", "BBB"), max_size=40):
    time = T0 - 6 * SECOND
    records = []
    for _ in range(draw(st.integers(1, max_size))):
        time += draw(st.sampled_from(STEPS))
        records.append(quote(draw(st.sampled_from(symbols)), time, draw(st.sampled_from(PRICES))))
    return records


# --- price_above, price_below ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(quote_series(), st.sampled_from(["price_above", "price_below"]), cooldowns, modes, created)
def test_price_level_rules_fire_when_the_condition_becomes_true(
    records, kind, cooldown, mode, start
):
    each = rule(
        kind, symbols=("AAA", "BBB"), mode=mode, cooldown=cooldown, created_at=start, level=LEVEL
    )
    conditions = []
    for offset, q in enumerate(records):
        if q.ts_event >= start:
            holds = q.price >= LEVEL if kind == "price_above" else q.price <= LEVEL
            conditions.append((q.symbol, offset, q.ts_event, True if holds else None))
    assert fires([each], records) == per_subject(conditions, ("AAA", "BBB"), each)


def test_price_above_fires_at_the_level_and_again_only_after_dropping_below():
    records = [quote("AAA", T0 + i * SECOND, p) for i, p in enumerate([99, 100, 101, 99.5, 100])]
    each = rule("price_above", level=100.0)
    assert [offset for _, offset, _ in fires([each], records)] == [1, 4]
    assert fires([rule("price_above", level=100.0, mode="once")], records) == [
        ("AAA", 1, T0 + SECOND)
    ]


# --- crosses -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(quote_series(), cooldowns, modes, created)
def test_crosses_fires_when_the_side_of_the_level_changes(records, cooldown, mode, start):
    each = rule(
        "crosses",
        symbols=("AAA", "BBB"),
        mode=mode,
        cooldown=cooldown,
        created_at=start,
        level=LEVEL,
    )
    conditions, previous = [], {}
    for offset, q in enumerate(records):
        if q.ts_event < start:
            continue
        before = previous.get(q.symbol)
        crossed = before is not None and (before >= LEVEL) != (q.price >= LEVEL)
        conditions.append((q.symbol, offset, q.ts_event, True if crossed else None))
        previous[q.symbol] = q.price
    assert fires([each], records) == per_subject(conditions, ("AAA", "BBB"), each)


def test_crosses_both_ways_with_the_level_counting_as_above():
    prices = [99.0, 101.0, 99.0, 100.0, 101.0, 100.0, 99.99]
    records = [quote("AAA", T0 + i * SECOND, p) for i, p in enumerate(prices)]
    evaluator = AlertEvaluator()
    evaluator.upsert(rule("crosses", level=100.0))
    alerts = [a for s, r in sourced(records) for a in evaluator.evaluate(r, s)]
    assert [(a.source_offset, a.message.split(": ")[0]) for a in alerts] == [
        (1, "AAA crossed 100.0 up"),
        (2, "AAA crossed 100.0 down"),
        (3, "AAA crossed 100.0 up"),
        (6, "AAA crossed 100.0 down"),
    ]
    assert alerts[0].values == {"price": 101.0, "previous": 99.0, "level": 100.0}


def test_crosses_needs_a_previous_quote_seen_by_the_rule():
    records = [
        quote("AAA", T0 - SECOND, 99.0),
        quote("AAA", T0, 101.0),
        quote("AAA", T0 + SECOND, 99.0),
    ]
    assert fires([rule("crosses", level=100.0)], records) == [("AAA", 2, T0 + SECOND)]


# --- change_pct --------------------------------------------------------------------------


def model_change(records, each):
    conditions = []
    span, pct = each.window_us, each.pct
    for offset, q in enumerate(records):
        if q.ts_event < each.created_at:
            continue
        since = max(q.ts_event - span, each.created_at)
        window = [
            r.price for r in records[: offset + 1] if r.symbol == q.symbol and since <= r.ts_event
        ]
        low, high = min(window), max(window)
        rise, fall = (q.price - low) / low * 100, (high - q.price) / high * 100
        if each.direction == "up" or (each.direction == "either" and rise >= fall):
            move = rise
        else:
            move = -fall
        side = (1 if move > 0 else -1) if abs(move) >= pct else None
        conditions.append((q.symbol, offset, q.ts_event, side))
    return per_subject(conditions, each.symbols, each)


@settings(max_examples=300, deadline=None)
@given(
    quote_series(),
    st.sampled_from([1.0, 2.0, 4.0, 5.0]),
    st.sampled_from([SECOND, 3 * SECOND, 10 * SECOND]),
    st.sampled_from(["up", "down", "either"]),
    cooldowns,
    modes,
    created,
)
def test_change_pct_matches_a_scan_of_the_window(
    records, pct, span, direction, cooldown, mode, start
):
    each = rule(
        "change_pct",
        symbols=("AAA", "BBB"),
        mode=mode,
        cooldown=cooldown,
        created_at=start,
        pct=pct,
        window_us=span,
        direction=direction,
    )
    assert fires([each], records) == model_change(records, each)


def test_change_pct_window_includes_a_quote_exactly_one_window_old():
    each = rule("change_pct", pct=5.0, window_us=60 * SECOND, direction="up")
    edge = [quote("AAA", T0, 100.0), quote("AAA", T0 + 60 * SECOND, 105.0)]
    assert fires([each], edge) == [("AAA", 1, T0 + 60 * SECOND)]
    beyond = [quote("AAA", T0, 100.0), quote("AAA", T0 + 60 * SECOND + 1, 105.0)]
    assert fires([each], beyond) == []


def test_change_pct_either_fires_again_when_the_move_turns_the_other_way():
    each = rule("change_pct", pct=5.0, window_us=60 * SECOND, direction="either")
    prices = [100.0, 106.0, 107.0, 100.0, 99.0]
    records = [quote("AAA", T0 + i * SECOND, p) for i, p in enumerate(prices)]
    assert [offset for _, offset, _ in fires([each], records)] == [1, 3]


# --- volume_spike ------------------------------------------------------------------------


@st.composite
def candle_series(draw):
    records, minute, last_closed = [], T0 // (60 * SECOND) - 3, None
    for _ in range(draw(st.integers(1, 40))):
        minute += draw(st.sampled_from([0, 1, 1, 1, 2]))
        closed = draw(st.booleans()) or minute == last_closed
        volume = draw(st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0]))
        records.append(candle("AAA", "1m", minute * 60 * SECOND, volume, closed))
        last_closed = minute if closed else last_closed
    return records


@settings(max_examples=300, deadline=None)
@given(
    candle_series(), st.sampled_from([1.0, 2.0, 3.0]), st.integers(1, 4), cooldowns, modes, created
)
def test_volume_spike_against_the_mean_of_the_closed_candles_before(
    records, factor, lookback, cooldown, mode, start
):
    each = rule(
        "volume_spike",
        mode=mode,
        cooldown=cooldown * 60,
        created_at=start,
        factor=factor,
        lookback=lookback,
        timeframe="1m",
    )
    conditions, ends, volumes = [], [], []
    for offset, c in enumerate(records):
        end = c.open_time + 60 * SECOND
        if not c.is_closed or (ends and end <= ends[-1]):
            continue
        if end >= start:
            enough = len(ends) >= lookback and ends[-lookback] >= start
            spike = enough and c.volume > factor * sum(volumes[-lookback:]) / lookback
            conditions.append(("AAA", offset, end, True if spike else None))
        ends.append(end)
        volumes.append(c.volume)
    assert fires([each], records) == per_subject(conditions, ("AAA",), each)


def test_volume_spike_is_strictly_over_the_factor_and_ignores_other_timeframes():
    each = rule("volume_spike", factor=2.0, lookback=3, timeframe="1m")
    minute = 60 * SECOND
    records = [candle("AAA", "1m", T0 + i * minute, v) for i, v in enumerate([10, 10, 10, 20])]
    records += [
        candle("AAA", "5m", T0 + 20 * minute, 500.0),
        candle("AAA", "1m", T0 + 4 * minute, 99.0, closed=False),
        candle("AAA", "1m", T0 + 4 * minute, 50.0),
    ]
    assert fires([each], records) == [("AAA", 6, T0 + 5 * minute)]
    broken = [*records[:4], candle("AAA", "1m", T0 + 4 * minute, float("nan")), *records[6:]]
    assert fires([each], broken) == [("AAA", 5, T0 + 5 * minute)]


# --- stale -------------------------------------------------------------------------------


def model_stale(records, each):
    """Replay the partition clock; the watched symbol is stale once the clock passes its due."""
    result, clock, last_seen, last_fired, armed, done = [], None, None, None, True, False
    silence, cooldown = each.silence_us, each.cooldown_us
    newest: dict[str, int] = {}
    for offset, q in enumerate(records):
        time = max(q.ts_event, newest.get(q.symbol, q.ts_event))
        newest[q.symbol] = time
        clock = time if clock is None else max(clock, time)
        if last_seen is not None and armed and not done:
            due = last_seen + silence
            if last_fired is not None:
                due = max(due, last_fired + cooldown)
            if due < clock and due >= each.created_at:
                result.append((each.symbols[0], offset, due))
                last_fired, armed, done = due, False, each.mode == "once"
        if q.symbol == each.symbols[0] and time >= each.created_at:
            last_seen = time
            if clock - time <= silence:
                armed = True
    return result


@settings(max_examples=300, deadline=None)
@given(
    quote_series(max_size=60),
    st.sampled_from([SECOND, 4 * SECOND, 9 * SECOND]),
    cooldowns,
    modes,
    created,
)
def test_stale_fires_when_the_partition_clock_passes_the_silence(
    records, silence, cooldown, mode, start
):
    each = rule("stale", mode=mode, cooldown=cooldown, created_at=start, silence_us=silence)
    assert fires([each], records) == model_stale(records, each)


def test_stale_is_measured_on_event_time_and_strictly_after_the_silence():
    each = rule("stale", silence_us=10 * SECOND)
    on_time = [quote("AAA", T0, 1.0), quote("BBB", T0 + 10 * SECOND, 1.0)]
    assert fires([each], on_time) == []
    late = [quote("AAA", T0, 1.0), quote("BBB", T0 + 10 * SECOND + 1, 1.0)]
    assert fires([each], late) == [("AAA", 1, T0 + 10 * SECOND)]
    own_quote_after_the_gap = [
        quote("AAA", T0, 1.0),
        quote("AAA", T0 + 15 * SECOND, 1.0),
        quote("AAA", T0 + 26 * SECOND, 1.0),
    ]
    assert fires([each], own_quote_after_the_gap) == [
        ("AAA", 1, T0 + 10 * SECOND),
        ("AAA", 2, T0 + 25 * SECOND),
    ]


def test_stale_waits_for_its_first_quote_and_its_cooldown():
    each = rule("stale", silence_us=2 * SECOND, cooldown=10 * SECOND)
    records = [quote("BBB", T0 + i * SECOND, 1.0) for i in range(6)]
    assert fires([each], records) == []
    records = [
        quote("AAA", T0, 1.0),
        quote("BBB", T0 + 3 * SECOND, 1.0),
        quote("AAA", T0 + 4 * SECOND, 1.0),
        quote("BBB", T0 + 7 * SECOND, 1.0),
        quote("BBB", T0 + 12 * SECOND + 1, 1.0),
    ]
    assert fires([each], records) == [("AAA", 1, T0 + 2 * SECOND), ("AAA", 4, T0 + 12 * SECOND)]


# --- provider_down -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["synthetic:alpha", "synthetic:beta"]),
            st.sampled_from(STEPS),
            st.sampled_from(["UP", "DEGRADED", "DOWN"]),
        ),
        min_size=1,
        max_size=40,
    ),
    cooldowns,
    modes,
    created,
)
def test_provider_down_fires_when_a_provider_goes_down(steps, cooldown, mode, start):
    each = rule(
        "provider_down",
        providers=("synthetic:alpha", "synthetic:beta"),
        mode=mode,
        cooldown=cooldown,
        created_at=start,
    )
    records, conditions, time = [], [], T0 - 6 * SECOND
    for offset, (provider, step, state) in enumerate(steps):
        time += step
        records.append(status(provider, time, state))
        if time >= start:
            conditions.append((provider, offset, time, True if state == "DOWN" else None))
    assert fires([each], records) == per_subject(conditions, each.providers, each)


def test_provider_down_says_why():
    evaluator = AlertEvaluator()
    evaluator.upsert(rule("provider_down", providers=("ccxt:kraken",)))
    records = [status("ccxt:kraken", T0, "DOWN", error_kind="rate_limit")]
    [alert] = [a for s, r in sourced(records) for a in evaluator.evaluate(r, s)]
    assert alert.message == "provider ccxt:kraken is DOWN: rate_limit"
    assert (alert.subject, alert.source_topic, alert.values) == (
        "ccxt:kraken",
        "fiml.provider.status",
        {},
    )


def test_a_book_feed_status_neither_fires_nor_rearms_provider_down():
    evaluator = AlertEvaluator()
    evaluator.upsert(rule("provider_down", providers=("ccxt:kraken",)))
    records = [
        status("ccxt:kraken", T0, "DOWN"),
        dataclasses.replace(status("ccxt:kraken", T0 + SECOND, "DEGRADED"), feed="books"),
        status("ccxt:kraken", T0 + 2 * SECOND, "DOWN"),
    ]
    alerts = [a for s, r in sourced(records) for a in evaluator.evaluate(r, s)]
    assert [alert.ts_event for alert in alerts] == [T0], "the book status re-armed the rule"


# --- a rule's life -----------------------------------------------------------------------


def test_a_rule_sees_records_from_created_at_until_deleted_at():
    records = [quote("AAA", T0 + i * SECOND, p) for i, p in enumerate([101, 99, 101, 99, 101])]
    each = rule("price_above", level=100.0, created_at=T0 + SECOND, deleted_at=T0 + 4 * SECOND)
    assert fires([each], records) == [("AAA", 2, T0 + 2 * SECOND)]


def test_deleting_a_rule_keeps_what_it_remembers():
    evaluator = AlertEvaluator()
    once = rule("price_above", level=100.0, mode="once")
    evaluator.upsert(once)
    assert evaluator.on_quote(quote("AAA", T0, 101.0), sourced([quote("AAA", T0, 1)])[0][0])
    evaluator.upsert(rule("price_above", level=100.0, mode="once", deleted_at=T0 + 60 * SECOND))
    later = [quote("AAA", T0 + SECOND, 99.0), quote("AAA", T0 + 2 * SECOND, 101.0)]
    assert [a for s, r in sourced(later) for a in evaluator.evaluate(r, s)] == []


def test_a_quote_older_than_its_symbols_newest_counts_at_the_newest_time():
    each = rule("price_above", level=100.0, created_at=T0 + 5 * SECOND)
    records = [quote("AAA", T0 + 5 * SECOND, 99.0), quote("AAA", T0 + 4 * SECOND, 101.0)]
    assert fires([each], records) == [("AAA", 1, T0 + 5 * SECOND)]
