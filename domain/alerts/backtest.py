"""A rule tried on a stretch of the log: the live evaluation, fed only that rule."""

from __future__ import annotations

from collections.abc import Iterable

from domain.alerts.evaluator import AlertEvaluator
from domain.alerts.firing import Source
from schemas.alerts import AlertRule, FiredAlert
from schemas.records import Candle, ProviderStatus, Quote

Event = tuple[Source, Quote | Candle | ProviderStatus]


def backtest(rule: AlertRule, events: Iterable[Event]) -> list[FiredAlert]:
    """The alerts ``rule`` fires on ``events`` (in log order), as the live evaluator fires them.

    The rule sees records from its ``created_at``: to try a rule on history from before it
    existed, give it the start of the range as ``created_at``.
    """
    evaluator = AlertEvaluator()
    evaluator.upsert(rule)
    return [alert for source, record in events for alert in evaluator.evaluate(record, source)]
