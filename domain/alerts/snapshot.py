"""An evaluator's state as plain data (JSON-ready: dicts with string keys, lists, numbers)."""

from __future__ import annotations

import dataclasses
from typing import Any

from domain.alerts.evaluator import AlertEvaluator
from domain.alerts.firing import Watch
from domain.alerts.series import ExtremaWindow, VolumeHistory
from schemas.alerts import AlertRule

FORMAT_VERSION = 1


class SnapshotError(ValueError):
    """Data that is not a snapshot this version can restore."""


def snapshot(evaluator: AlertEvaluator, *, rules: bool = True) -> dict[str, Any]:
    """The evaluator's whole state; :func:`restore` of it continues exactly where it was.

    Without ``rules`` the rules are left out (most of the cost with many rules): the caller
    upserts them again after :func:`restore`, and their state is kept.
    """
    chosen = sorted(evaluator.rules.items()) if rules else []
    return {
        "version": FORMAT_VERSION,
        "rules": [dataclasses.asdict(rule) for _, rule in chosen],
        "watches": {
            rule_id: {subject: watch.to_data() for subject, watch in watches.items()}
            for rule_id, watches in evaluator.watches.items()
        },
        "symbol_time": dict(evaluator.symbol_time),
        "windows": {
            symbol: {str(span): window.to_data() for span, window in windows.items()}
            for symbol, windows in evaluator.windows.items()
        },
        "volumes": {
            symbol: {timeframe: history.to_data() for timeframe, history in histories.items()}
            for symbol, histories in evaluator.volumes.items()
        },
        "clock": evaluator.clock,
        "horizon": evaluator.horizon,
    }


def restore(data: dict[str, Any]) -> AlertEvaluator:
    """The evaluator :func:`snapshot` described."""
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise SnapshotError(f"not an alerts snapshot of format version {FORMAT_VERSION}")
    evaluator = AlertEvaluator()
    evaluator.watches = {
        rule_id: {subject: Watch(*fields) for subject, fields in watches.items()}
        for rule_id, watches in data["watches"].items()
    }
    evaluator.symbol_time = dict(data["symbol_time"])
    evaluator.windows = {
        symbol: {int(span): ExtremaWindow.from_data(window) for span, window in windows.items()}
        for symbol, windows in data["windows"].items()
    }
    evaluator.volumes = {
        symbol: {
            timeframe: VolumeHistory(list(ends), list(volumes))
            for timeframe, (ends, volumes) in histories.items()
        }
        for symbol, histories in data["volumes"].items()
    }
    evaluator.clock, evaluator.horizon = data["clock"], data["horizon"]
    for fields in data["rules"]:
        evaluator.attach(
            AlertRule(
                **{
                    **fields,
                    "symbols": list(fields["symbols"]),
                    "providers": list(fields["providers"]),
                }
            )
        )
    return evaluator
