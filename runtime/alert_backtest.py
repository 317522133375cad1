"""A rule tried on a past range of the log, as the alerts agent would have run it: the
records of its symbols read back by event time (``runtime/replay.py``), one evaluator per
partition as live (``domain/alerts/backtest.py``), the alerts merged by event time.

Quotes drive the price, crossing, change and stale rules, closed candles of the rule's
timeframe volume_spike; provider_down is not back-tested (statuses are not replayable by
symbol). The work is bounded: at most ``MAX_BACKTEST_RECORDS`` records are read, and the
answer says when the range was cut there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from domain.alerts.backtest import Event, backtest
from domain.alerts.firing import Source
from runtime.readers import ReaderPool
from runtime.replay import Replay
from runtime.replay_request import STREAMS, ReplayError, ReplayRequest
from runtime.settings import Settings
from schemas.alerts import AlertRule, FiredAlert

MAX_BACKTEST_RECORDS = 500_000


@dataclass(frozen=True)
class BacktestResult:
    """The alerts a rule fires over a range, the records read, and whether the range was
    cut at ``MAX_BACKTEST_RECORDS`` (``through``: the event time of the last record read)."""

    alerts: list[FiredAlert]
    records: int
    truncated: bool
    through: int | None


async def run_backtest(
    settings: Settings,
    rule: AlertRule,
    start: int,
    end: int,
    limit: int = MAX_BACKTEST_RECORDS,
    readers: ReaderPool | None = None,
) -> BacktestResult:
    """The alerts ``rule`` fires on the log from ``start`` to ``end`` (µs, inclusive); the
    rule sees the range from ``start`` whenever it was created. ReplayError for a range or
    rule that cannot be back-tested. ``readers``: the clients to read with (see
    :class:`runtime.replay.Replay`)."""
    if rule.kind == "provider_down":
        raise ReplayError("provider_down rules cannot be back-tested")
    stream = "quotes" if rule.timeframe is None else "candles"
    request = ReplayRequest(stream, tuple(rule.symbols), start, end, timeframe=rule.timeframe)
    topic = settings.topic(STREAMS[stream].role)
    by_partition: dict[int, list[Event]] = {}
    records, through, truncated = 0, None, False
    async with Replay(settings, request, readers=readers) as replay:
        async for chunk in replay.chunks(1000):
            room = limit - records
            for item in chunk[:room]:
                source = Source(topic, item.partition, item.offset)
                by_partition.setdefault(item.partition, []).append((source, item.record))
                through = item.time
            records += min(len(chunk), room)
            if len(chunk) > room:  # a record beyond the limit: the range is cut
                truncated = True
                break
    tried = dataclasses.replace(rule, created_at=start, deleted_at=None)
    alerts = [alert for events in by_partition.values() for alert in backtest(tried, events)]
    alerts.sort(key=lambda alert: (alert.ts_event, alert.source_partition, alert.source_offset))
    return BacktestResult(alerts, records, truncated, through)
