"""Stale rules: a timer per (rule, symbol) that fires when the partition's clock passes it."""

from __future__ import annotations

import heapq

from domain.alerts.firing import Source, Watch, fired, gate, sees
from schemas.alerts import AlertRule, FiredAlert
from schemas.times import SECOND


def due(rule: AlertRule, watch: Watch) -> int:
    """When a stale watch fires: the silence after its last quote, and not in cooldown."""
    assert rule.silence_us is not None and watch.last_seen is not None
    at = watch.last_seen + rule.silence_us
    if watch.last_fired is not None:
        at = max(at, watch.last_fired + rule.cooldown_us)
    return at


class StaleTimers:
    """A heap of ``(due, rule id, symbol)``: one live entry per armed stale watch.

    An entry whose watch has moved on (a later quote, a replaced rule) is skipped when it
    comes up, or moved to the watch's new due time; so a quote costs no heap work.
    """

    def __init__(self) -> None:
        self.heap: list[tuple[int, str, str]] = []

    def schedule(self, rule: AlertRule, symbol: str, watch: Watch) -> None:
        """Set the watch's timer to its due time."""
        watch.scheduled = due(rule, watch)
        heapq.heappush(self.heap, (watch.scheduled, rule.rule_id, symbol))

    def resume(self, rule_id: str, symbol: str, watch: Watch) -> None:
        """Put back the timer of a restored watch."""
        if watch.scheduled is not None:
            heapq.heappush(self.heap, (watch.scheduled, rule_id, symbol))

    def quote(self, rule: AlertRule, symbol: str, watch: Watch, time: int, clock: int) -> None:
        """A quote of ``symbol`` at ``time``: fresh again unless ``clock`` is a silence ahead."""
        assert rule.silence_us is not None
        watch.last_seen = time
        if clock - time <= rule.silence_us:
            watch.armed = True
        if watch.armed and not watch.done and watch.scheduled is None:
            self.schedule(rule, symbol, watch)

    def expire(
        self,
        rules: dict[str, AlertRule],
        watches: dict[str, dict[str, Watch]],
        clock: int,
        source: Source,
    ) -> list[FiredAlert]:
        """Fire the watches whose due time ``clock`` has passed, by (due, rule id, symbol)."""
        alerts: list[FiredAlert] = []
        while self.heap and self.heap[0][0] < clock:
            at, rule_id, symbol = heapq.heappop(self.heap)
            watch = watches.get(rule_id, {}).get(symbol)
            rule = rules.get(rule_id)
            if rule is None or watch is None or watch.scheduled != at:
                continue
            at = due(rule, watch)
            if at >= clock:
                self.schedule(rule, symbol, watch)
                continue
            watch.scheduled = None
            if sees(rule, at) and gate(rule, watch, True, at):
                alerts.append(_stale_alert(rule, symbol, watch, at, clock, source))
        return alerts


def _stale_alert(
    rule: AlertRule, symbol: str, watch: Watch, at: int, clock: int, source: Source
) -> FiredAlert:
    assert rule.silence_us is not None and watch.last_seen is not None
    silent = (clock - watch.last_seen) / SECOND
    limit = rule.silence_us // SECOND
    return fired(
        rule,
        symbol,
        at,
        source,
        {"silent_seconds": silent, "limit_seconds": float(limit)},
        f"no quote of {symbol} for {silent:.1f} s of event time (limit {limit} s)",
    )
