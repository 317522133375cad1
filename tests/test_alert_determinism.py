"""Alerts are a function of the log: repeatable, resumable from a snapshot, back-testable.

Stories mix every rule kind over three symbols and two providers with interleaved quotes,
candles and statuses.
"""

from __future__ import annotations

import dataclasses
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts.backtest import backtest
from domain.alerts.evaluator import AlertEvaluator
from domain.alerts.snapshot import SnapshotError, restore, snapshot
from schemas.records import Candle, Quote
from tests.support_alerts import SECOND, T0, candle, quote, rule, sourced, status

SYMBOLS = ("AAA", "BBB", "CCC")
PROVIDERS = ("synthetic:alpha", "synthetic:beta")
MINUTE = 60 * SECOND

common = {
    "symbols": st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True),
    "mode": st.sampled_from(["once", "repeat"]),
    "cooldown": st.sampled_from([0, SECOND, 5 * SECOND]),
    "created_at": st.integers(T0 - 20 * SECOND, T0 + 60 * SECOND),
}
kinds = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["price_above", "price_below", "crosses"]),
            "level": st.sampled_from([99.0, 100.0, 101.0]),
            **common,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("change_pct"),
            "pct": st.sampled_from([1.0, 3.0]),
            "window_us": st.sampled_from([5 * SECOND, 20 * SECOND]),
            "direction": st.sampled_from(["up", "down", "either"]),
            **common,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("volume_spike"),
            "factor": st.sampled_from([1.0, 2.0]),
            "lookback": st.integers(1, 3),
            "timeframe": st.just("1m"),
            **common,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("stale"),
            "silence_us": st.sampled_from([3 * SECOND, 8 * SECOND]),
            **common,
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("provider_down"),
            **{k: v for k, v in common.items() if k != "symbols"},
            "providers": st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=2, unique=True),
        }
    ),
)


@st.composite
def rules(draw):
    drawn = draw(st.lists(kinds, min_size=1, max_size=6))
    made = []
    for number, fields in enumerate(drawn):
        fields = dict(fields)
        deleted = draw(st.none() | st.integers(T0, T0 + 120 * SECOND))
        made.append(rule(fields.pop("kind"), rule_id=f"r{number}", deleted_at=deleted, **fields))
    return made


@st.composite
def records(draw):
    time, made, minute = T0 - 30 * SECOND, [], (T0 - 30 * SECOND) // MINUTE
    for _ in range(draw(st.integers(1, 80))):
        time += draw(st.sampled_from([0, 300_000, SECOND, 2 * SECOND, 4 * SECOND, 9 * SECOND]))
        choice = draw(st.integers(0, 9))
        if choice < 7:
            price = draw(st.sampled_from([97.0, 98.5, 99.0, 100.0, 100.5, 101.0, 103.0]))
            made.append(quote(draw(st.sampled_from(SYMBOLS)), time, price))
        elif choice == 7 and (time // MINUTE) > minute:
            minute = time // MINUTE
            made.append(
                candle(
                    draw(st.sampled_from(SYMBOLS)),
                    "1m",
                    (minute - 1) * MINUTE,
                    draw(st.sampled_from([0.0, 1.0, 3.0, 10.0])),
                )
            )
        else:
            made.append(
                status(
                    draw(st.sampled_from(PROVIDERS)),
                    time,
                    draw(st.sampled_from(["UP", "DEGRADED", "DOWN"])),
                )
            )
    return sourced(made)


def live(all_rules, events, evaluator=None):
    evaluator = evaluator or AlertEvaluator()
    for each in all_rules:
        evaluator.upsert(each)
    return [a for source, record in events for a in evaluator.evaluate(record, source)]


@settings(max_examples=200, deadline=None)
@given(rules(), records())
def test_the_same_log_fires_the_same_alerts_with_unique_ids(all_rules, events):
    first = live(all_rules, events)
    assert live(all_rules, events) == first
    assert len({a.alert_id for a in first}) == len(first)


@settings(max_examples=200, deadline=None)
@given(rules(), records(), st.data())
def test_a_snapshot_midway_continues_as_if_uninterrupted(all_rules, events, data):
    whole = AlertEvaluator()
    expected = live(all_rules, events, whole)
    cut = data.draw(st.integers(0, len(events)))
    before = AlertEvaluator()
    alerts = live(all_rules, events[:cut], before)
    resumed = restore(json.loads(json.dumps(snapshot(before))))
    for each in all_rules:  # the rules table is read again after a restart
        resumed.upsert(each)
    alerts += [a for source, record in events[cut:] for a in resumed.evaluate(record, source)]
    assert alerts == expected
    assert snapshot(resumed) == snapshot(whole)


def first_index_at_or_after(events, time):
    for index, (_, record) in enumerate(events):
        event_time = getattr(record, "ts_event", None)
        if event_time is None:
            event_time = record.open_time + MINUTE
        if event_time >= time:
            return index
    return len(events)


@settings(max_examples=200, deadline=None)
@given(rules(), records(), st.data())
def test_a_backtest_fires_what_the_live_run_fired(all_rules, events, data):
    """Live, each rule arrives at some point before the log reaches its creation time."""
    arrivals: dict[int, list] = {}
    for each in all_rules:
        latest = first_index_at_or_after(events, each.created_at)
        arrivals.setdefault(data.draw(st.integers(0, latest)), []).append(each)
    evaluator, alerts = AlertEvaluator(), []
    for index, (source, record) in enumerate(events):
        for each in arrivals.get(index, []):
            evaluator.upsert(each)
        alerts += evaluator.evaluate(record, source)
    for each in all_rules:
        assert backtest(each, events) == [a for a in alerts if a.rule_id == each.rule_id]


@settings(max_examples=200, deadline=None)
@given(rules(), records(), st.randoms(use_true_random=False))
def test_how_the_topics_interleave_does_not_change_what_fires(all_rules, events, rng):
    by_topic: dict[str, list] = {}
    for event in events:
        by_topic.setdefault(event[0].topic, []).append(event)
    shuffled, queues = [], [list(reversed(q)) for q in by_topic.values()]
    while queues:
        queue = rng.choice(queues)
        shuffled.append(queue.pop())
        queues = [q for q in queues if q]
    key = lambda alert: alert.alert_id  # noqa: E731
    assert sorted(live(all_rules, shuffled), key=key) == sorted(live(all_rules, events), key=key)


def full_path(evaluator, record, source):
    """``evaluate`` without its shortcut for an evaluator with nothing to watch."""
    if isinstance(record, Quote):
        return evaluator.on_quote(record, source)
    if isinstance(record, Candle):
        return evaluator.on_candle(record, source)
    return evaluator.on_status(record, source)


@st.composite
def odd_records(draw):
    """The stories' records, some spoiled (prices no quote has, open candles), the later
    part an hour or more of event time on (the deleted rules are purged)."""
    made = []
    for _, record in draw(records()):
        if isinstance(record, Quote) and draw(st.integers(0, 5)) == 0:
            price = draw(st.sampled_from([0.0, -1.0, math.nan, math.inf]))
            record = dataclasses.replace(record, price=price)
        elif isinstance(record, Candle) and draw(st.booleans()):
            record = dataclasses.replace(record, is_closed=False)
        made.append(record)
    cut, jump = draw(st.integers(0, len(made))), draw(st.sampled_from([0, 3601 * SECOND]))
    for index in range(cut, len(made)):
        record = made[index]
        if isinstance(record, Candle):
            made[index] = dataclasses.replace(record, open_time=record.open_time + jump)
        else:
            made[index] = dataclasses.replace(record, ts_event=record.ts_event + jump)
    return sourced(made)


@settings(max_examples=300, deadline=None)
@given(rules(), odd_records(), st.data())
def test_an_evaluator_with_nothing_to_watch_changes_as_the_full_path_would(all_rules, events, data):
    """Rules come and go (upserts, tombstones, purges) between the records; ``evaluate``
    (with its shortcut when the evaluator is idle) and the full path fire the same alerts
    and leave the same snapshot after every record, restored from it or not."""
    changes: dict[int, list] = {}
    for each in all_rules:
        changes.setdefault(data.draw(st.integers(0, len(events))), []).append(each)
        if data.draw(st.booleans()):
            changes.setdefault(data.draw(st.integers(0, len(events))), []).append(each.rule_id)
    fast, full = AlertEvaluator(), AlertEvaluator()
    for index, (source, record) in enumerate([*events, (None, None)]):
        for change in changes.get(index, []):
            for evaluator in (fast, full):
                if isinstance(change, str):
                    evaluator.remove(change)
                else:
                    evaluator.upsert(change)
        if record is None:
            break
        assert fast.evaluate(record, source) == full_path(full, record, source)
        assert snapshot(fast) == snapshot(full)
    resumed = restore(json.loads(json.dumps(snapshot(fast))))
    assert snapshot(resumed) == snapshot(full)


def test_replacing_a_rule_starts_it_afresh_and_removing_it_silences_it():
    events = sourced([quote("AAA", T0 + i * SECOND, p) for i, p in enumerate([101, 102, 103])])
    evaluator = AlertEvaluator()
    evaluator.upsert(rule("price_above", level=100.0, mode="once"))
    assert len(evaluator.evaluate(events[0][1], events[0][0])) == 1
    evaluator.upsert(rule("price_above", level=100.5, mode="once"))
    assert [a.values["level"] for a in evaluator.evaluate(events[1][1], events[1][0])] == [100.5]
    evaluator.remove("r1")
    assert evaluator.evaluate(events[2][1], events[2][0]) == []
    assert (evaluator.rules, evaluator.watches) == ({}, {})


def test_deleted_rules_are_purged_an_hour_of_event_time_after_their_deletion():
    evaluator = AlertEvaluator()
    evaluator.upsert(
        rule("change_pct", pct=1.0, window_us=SECOND, direction="up", deleted_at=T0 + SECOND)
    )
    evaluator.on_quote(quote("AAA", T0, 100.0), sourced([quote("AAA", T0, 1)])[0][0])
    assert evaluator.windows and "r1" in evaluator.rules
    evaluator.on_status(
        status("synthetic:alpha", T0 + 3601 * SECOND, "UP"), sourced([status("x", 0, "UP")])[0][0]
    )
    assert (evaluator.rules, evaluator.watches, evaluator.windows) == ({}, {}, {})
    evaluator.upsert(
        rule("change_pct", pct=1.0, window_us=SECOND, direction="up", deleted_at=T0 + SECOND)
    )
    assert evaluator.rules == {}


def test_a_snapshot_of_another_format_is_refused():
    data = snapshot(AlertEvaluator())
    assert restore(data).rules == {}
    for bad in ({**data, "version": 2}, [], {"rules": []}):
        try:
            restore(bad)
        except SnapshotError as error:
            assert "format version 1" in str(error)
        else:
            raise AssertionError(f"restored {bad!r}")


def test_a_quote_is_evaluated_by_the_rules_of_its_symbol_only():
    """10 000 crosses rules over 100 symbols: a quote of S7 moves the 100 watches of S7."""
    evaluator = AlertEvaluator()
    for number in range(10_000):
        evaluator.upsert(
            rule("crosses", rule_id=f"r{number:05}", symbols=(f"S{number % 100}",), level=1.0)
        )
    evaluator.on_quote(quote("S7", T0, 5.0), sourced([quote("S7", T0, 1)])[0][0])
    touched = sorted(
        rule_id
        for rule_id, watches in evaluator.watches.items()
        if any(watch.previous is not None for watch in watches.values())
    )
    assert touched == [f"r{number:05}" for number in range(7, 10_000, 100)]
