"""The condition of each rule kind on one input, and the alert it fires when the gate opens."""

from __future__ import annotations

from domain.alerts.firing import Source, Watch, fired, gate
from domain.alerts.series import ExtremaWindow, VolumeHistory
from schemas.alerts import AlertRule, FiredAlert
from schemas.records import Candle, ProviderStatus
from schemas.times import SECOND, micros_to_iso


def price_level(
    rule: AlertRule, watch: Watch, symbol: str, price: float, time: int, source: Source
) -> FiredAlert | None:
    """price_above: ``price >= level``; price_below: ``price <= level``."""
    level = rule.level
    assert level is not None
    above = rule.kind == "price_above"
    if not gate(rule, watch, price >= level if above else price <= level, time):
        return None
    return fired(
        rule,
        symbol,
        time,
        source,
        {"price": price, "level": level},
        f"{symbol} at {price!r} is at or {'above' if above else 'below'} {level!r}",
    )


def crossing(
    rule: AlertRule, watch: Watch, symbol: str, price: float, time: int, source: Source
) -> FiredAlert | None:
    """crosses: the side of the level (``price >= level`` or not) differs from the last quote's."""
    level, previous = rule.level, watch.previous
    assert level is not None
    watch.previous = price
    crossed = previous is not None and (previous >= level) != (price >= level)
    if previous is None or not gate(rule, watch, crossed, time):
        return None
    way = "up" if price >= level else "down"
    return fired(
        rule,
        symbol,
        time,
        source,
        {"price": price, "previous": previous, "level": level},
        f"{symbol} crossed {level!r} {way}: {previous!r} to {price!r}",
    )


def change(
    rule: AlertRule,
    watch: Watch,
    symbol: str,
    price: float,
    time: int,
    source: Source,
    window: ExtremaWindow,
) -> FiredAlert | None:
    """change_pct: the price is ``pct`` percent above the window's low or below its high.

    With direction ``either`` the larger of the two moves counts (the rise on a tie), and a
    move the other way than the last one that fired re-arms the rule.
    """
    span, pct = rule.window_us, rule.pct
    assert span is not None and pct is not None
    low, high = window.extremes_since(max(time - span, rule.created_at))
    rise, fall = (price - low) / low * 100, (high - price) / high * 100
    if rule.direction == "up" or (rule.direction == "either" and rise >= fall):
        move, reference = rise, low
    else:
        move, reference = -fall, high
    side = 1 if move > 0 else -1
    if abs(move) >= pct and side != watch.side:
        watch.armed = True
    if not gate(rule, watch, abs(move) >= pct, time):
        return None
    watch.side = side
    return fired(
        rule,
        symbol,
        time,
        source,
        {"price": price, "reference": reference, "change_pct": move},
        f"{symbol} moved {move:+.2f}% within {span // SECOND} s: {reference!r} to {price!r}",
    )


def volume_spike(
    rule: AlertRule, watch: Watch, candle: Candle, end: int, history: VolumeHistory, source: Source
) -> FiredAlert | None:
    """volume_spike: volume over ``factor`` times the mean of the ``lookback`` candles before."""
    assert rule.factor is not None and rule.lookback is not None
    average = history.average(rule.lookback, rule.created_at)
    spike = average is not None and candle.volume > rule.factor * average
    if not gate(rule, watch, spike, end) or average is None:
        return None
    return fired(
        rule,
        candle.symbol,
        end,
        source,
        {"volume": candle.volume, "average": average, "factor": rule.factor},
        f"{candle.symbol} {candle.timeframe} candle of "
        f"{micros_to_iso(candle.open_time)} traded {candle.volume!r}, over "
        f"{rule.factor!r} times the average {average!r} of the {rule.lookback} before",
    )


def provider_down(
    rule: AlertRule, watch: Watch, status: ProviderStatus, source: Source
) -> FiredAlert | None:
    """provider_down: the provider's state is DOWN."""
    if not gate(rule, watch, status.state == "DOWN", status.ts_event):
        return None
    detail = f": {status.error_kind}" if status.error_kind else ""
    values = {} if status.latency_ms is None else {"latency_ms": status.latency_ms}
    return fired(
        rule,
        status.provider,
        status.ts_event,
        source,
        values,
        f"provider {status.provider} is DOWN{detail}",
    )
