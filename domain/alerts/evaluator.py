"""Alert rules evaluated on event time, record by record: one evaluator per input partition.

Quotes drive price_above, price_below, crosses, change_pct and stale; closed candles drive
volume_spike; provider statuses drive provider_down. What fires depends only on the input
records and the rules (never on a clock), so a replay, a rebuild and a back-test fire the
same alerts with the same ids. README.md in this folder states the rules exactly.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from bisect import insort
from collections.abc import Collection
from typing import TypeVar

from domain.alerts import kinds
from domain.alerts.firing import Source, Watch, sees
from domain.alerts.rules import check_record
from domain.alerts.series import ExtremaWindow, VolumeHistory
from domain.alerts.stale import StaleTimers
from schemas.alerts import AlertRule, FiredAlert
from schemas.records import TICKS_FEED, Candle, ProviderStatus, Quote
from schemas.times import SECOND, TIMEFRAMES

PURGE_AFTER_US = 3600 * SECOND

Entry = tuple[str, AlertRule, Watch]
K = TypeVar("K")


def _rule_id(entry: Entry) -> str:
    return entry[0]


def _subjects(rule: AlertRule) -> list[str]:
    """The symbols of a rule (its providers for provider_down)."""
    return rule.providers if rule.kind == "provider_down" else rule.symbols


def _drop_entry(index: dict[K, list[Entry]], key: K, rule_id: str) -> None:
    """Take the rule out of the index's list at ``key``; drop the list when it empties."""
    entries = [entry for entry in index[key] if entry[0] != rule_id]
    if entries:
        index[key] = entries
    else:
        del index[key]


class AlertEvaluator:
    """The rules and what they remember, fed quotes, closed candles and provider statuses.

    The public fields are the state (:mod:`domain.alerts.snapshot` writes them as plain
    data). The indexes (rules by symbol, by candle series and by provider, each in rule id
    order), the stale timers and the purge queue are derived from it.
    """

    def __init__(self) -> None:
        self.rules: dict[str, AlertRule] = {}
        self.watches: dict[str, dict[str, Watch]] = {}
        self.symbol_time: dict[str, int] = {}
        self.windows: dict[str, dict[int, ExtremaWindow]] = {}
        self.volumes: dict[str, dict[str, VolumeHistory]] = {}
        self.clock: int | None = None
        self.horizon: int | None = None
        self._by_symbol: dict[str, list[Entry]] = {}
        self._by_candle: dict[tuple[str, str], list[Entry]] = {}
        self._by_provider: dict[str, list[Entry]] = {}
        self._timers = StaleTimers()
        self._purges: list[tuple[int, str]] = []

    # --- rules ----------------------------------------------------------------------------

    def upsert(self, rule: AlertRule) -> None:
        """Add or replace a rule; a replacement that only sets ``deleted_at`` keeps its state.

        Raises :class:`InvalidRule` for a record that :func:`parse_rule` would not make.
        """
        old = self.rules.get(rule.rule_id)
        if old == rule:
            return
        check_record(rule)
        gone = self._purged(rule)
        if old is not None:
            same = dataclasses.replace(old, deleted_at=rule.deleted_at) == rule
            self._detach(old, keep_state=same and not gone)
        if not gone:
            self.attach(rule)

    def _purged(self, rule: AlertRule) -> bool:
        """Whether the newest event time is an hour past the rule's deletion."""
        deleted, horizon = rule.deleted_at, self.horizon
        return deleted is not None and horizon is not None and horizon >= deleted + PURGE_AFTER_US

    def remove(self, rule_id: str) -> None:
        """Forget a rule and its state at once (a tombstone in the rules topic)."""
        rule = self.rules.get(rule_id)
        if rule is not None:
            self._detach(rule, keep_state=False)

    def forget_all_but(self, rule_ids: Collection[str]) -> None:
        """Drop the watch state of rules not in ``rule_ids`` (a checkpoint restored after
        they were deleted: it holds their state, not the rules)."""
        for rule_id in set(self.watches) - set(rule_ids):
            del self.watches[rule_id]

    def attach(self, rule: AlertRule) -> None:
        """Index a rule, creating the state it needs that does not exist yet."""
        self.rules[rule.rule_id] = rule
        watches = self.watches.setdefault(rule.rule_id, {})
        for subject in _subjects(rule):
            watch = watches.setdefault(subject, Watch())
            entry = (rule.rule_id, rule, watch)
            if rule.kind == "provider_down":
                insort(self._by_provider.setdefault(subject, []), entry, key=_rule_id)
            elif rule.timeframe is not None:
                self.volumes.setdefault(subject, {}).setdefault(rule.timeframe, VolumeHistory())
                series = (subject, rule.timeframe)
                insort(self._by_candle.setdefault(series, []), entry, key=_rule_id)
            else:
                if rule.window_us is not None:
                    self.windows.setdefault(subject, {}).setdefault(
                        rule.window_us, ExtremaWindow(rule.window_us)
                    )
                insort(self._by_symbol.setdefault(subject, []), entry, key=_rule_id)
            self._timers.resume(rule.rule_id, subject, watch)
        if rule.deleted_at is not None:
            heapq.heappush(self._purges, (rule.deleted_at + PURGE_AFTER_US, rule.rule_id))

    def _detach(self, rule: AlertRule, keep_state: bool) -> None:
        del self.rules[rule.rule_id]
        for subject in _subjects(rule):
            if rule.kind == "provider_down":
                _drop_entry(self._by_provider, subject, rule.rule_id)
            elif rule.timeframe is not None:
                _drop_entry(self._by_candle, (subject, rule.timeframe), rule.rule_id)
            else:
                _drop_entry(self._by_symbol, subject, rule.rule_id)
        if not keep_state:
            self.watches.pop(rule.rule_id, None)
            self._prune(rule)

    def _prune(self, rule: AlertRule) -> None:
        """Drop the windows and volume histories no rule uses any more."""
        for symbol in _subjects(rule) if rule.kind != "provider_down" else ():
            span, timeframe = rule.window_us, rule.timeframe
            if span is not None and not any(
                other.window_us == span for _, other, _ in self._by_symbol.get(symbol, ())
            ):
                del self.windows[symbol][span]
                if not self.windows[symbol]:
                    del self.windows[symbol]
            if timeframe is not None and (symbol, timeframe) not in self._by_candle:
                del self.volumes[symbol][timeframe]
                if not self.volumes[symbol]:
                    del self.volumes[symbol]

    # --- records --------------------------------------------------------------------------

    def evaluate(self, record: Quote | Candle | ProviderStatus, source: Source) -> list[FiredAlert]:
        """The alerts ``record``, found at ``source`` in the log, fires."""
        busy = self.rules or self.windows or self.volumes or self._timers.heap or self._purges
        if not busy and not isinstance(record, ProviderStatus):  # statuses are few
            self._move_clocks(record)  # nothing to fire, push nor purge
            return []
        if isinstance(record, Quote):
            return self.on_quote(record, source)
        if isinstance(record, Candle):
            return self.on_candle(record, source)
        return self.on_status(record, source)

    def on_quote(self, quote: Quote, source: Source) -> list[FiredAlert]:
        """The stale timers the quote's event time passes, then the rules of its symbol."""
        price, symbol = quote.price, quote.symbol
        if not (math.isfinite(price) and price > 0):
            return []
        time = max(quote.ts_event, self.symbol_time.get(symbol, quote.ts_event))
        self.symbol_time[symbol] = time
        self._advance(time)
        clock = self.clock = time if self.clock is None else max(self.clock, time)
        windows = self.windows.get(symbol, {})
        for window in windows.values():
            window.push(time, price)
        alerts = self._timers.expire(self.rules, self.watches, clock, source)
        for _, rule, watch in self._by_symbol.get(symbol, ()):
            if not sees(rule, time):
                continue
            if rule.kind == "stale":
                self._timers.quote(rule, symbol, watch, time, clock)
                continue
            if rule.window_us is not None:
                alert = kinds.change(
                    rule, watch, symbol, price, time, source, windows[rule.window_us]
                )
            elif rule.kind == "crosses":
                alert = kinds.crossing(rule, watch, symbol, price, time, source)
            else:
                alert = kinds.price_level(rule, watch, symbol, price, time, source)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def on_candle(self, candle: Candle, source: Source) -> list[FiredAlert]:
        """volume_spike rules of a closed candle's series; open candles and repeats fire nothing."""
        size, volume = TIMEFRAMES.get(candle.timeframe), candle.volume
        if not (candle.is_closed and size and math.isfinite(volume) and volume >= 0):
            return []
        end = candle.open_time + size
        self._advance(end)
        history = self.volumes.get(candle.symbol, {}).get(candle.timeframe)
        if history is None or not history.accepts(end):
            return []
        alerts: list[FiredAlert] = []
        for _, rule, watch in self._by_candle.get((candle.symbol, candle.timeframe), ()):
            if sees(rule, end):
                alert = kinds.volume_spike(rule, watch, candle, end, history, source)
                if alert is not None:
                    alerts.append(alert)
        history.add(end, candle.volume)
        return alerts

    def on_status(self, status: ProviderStatus, source: Source) -> list[FiredAlert]:
        """provider_down rules of the status's provider (a status of its ticks; one of its
        order book feed says nothing of it)."""
        if status.feed != TICKS_FEED:
            return []
        self._advance(status.ts_event)
        alerts: list[FiredAlert] = []
        for _, rule, watch in self._by_provider.get(status.provider, ()):
            if sees(rule, status.ts_event):
                alert = kinds.provider_down(rule, watch, status, source)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _move_clocks(self, record: Quote | Candle) -> None:
        """What a quote or candle changes in an evaluator with no rules, windows, volume
        histories, timers nor purges: the event times (the rest of ``on_quote`` and
        ``on_candle`` finds nothing to do)."""
        if isinstance(record, Quote):
            price, symbol, time = record.price, record.symbol, record.ts_event
            if math.isfinite(price) and price > 0:
                time = self.symbol_time[symbol] = max(time, self.symbol_time.get(symbol, time))
                self.clock = time if self.clock is None else max(self.clock, time)
                self._advance(time)
        else:
            size, volume = TIMEFRAMES.get(record.timeframe), record.volume
            if record.is_closed and size and math.isfinite(volume) and volume >= 0:
                self._advance(record.open_time + size)

    def _advance(self, time: int) -> None:
        """Move the newest event time seen; purge the rules deleted long enough before it."""
        if self.horizon is not None and time <= self.horizon:
            return
        self.horizon = time
        while self._purges and self._purges[0][0] <= time:
            _, rule_id = heapq.heappop(self._purges)
            rule = self.rules.get(rule_id)
            if rule is not None and self._purged(rule):
                self._detach(rule, keep_state=False)
