"""Builders of alert rules and of the records alerts are evaluated on, for the alert tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.alerts.firing import Source
from schemas.alerts import AlertRule
from schemas.records import Candle, ProviderStatus, Quote

SECOND = 1_000_000
T0 = 1_763_807_400_000_000  # 2025-11-22T10:30:00Z
QUOTES = "fiml.quotes"
CANDLES = "fiml.candles"
STATUSES = "fiml.provider.status"

Record = Quote | Candle | ProviderStatus


def rule(
    kind: str,
    rule_id: str = "r1",
    symbols: Sequence[str] = ("AAA",),
    providers: Sequence[str] = (),
    mode: str = "repeat",
    cooldown: int = 0,
    created_at: int = T0,
    **parameters: object,
) -> AlertRule:
    """A rule as :func:`parse_rule` would make it, built directly (durations in µs)."""
    if kind == "provider_down":
        symbols, providers = (), providers or ("synthetic:alpha",)
    return AlertRule(
        rule_id,
        "anonymous",
        kind,
        mode,
        cooldown,
        created_at,
        list(symbols),
        list(providers),
        **parameters,
    )  # type: ignore[arg-type]


def quote(symbol: str, time: int, price: float) -> Quote:
    """An arbitrated quote of ``symbol`` at event ``time``."""
    return Quote(symbol, time, time, 0, price, "synthetic:alpha", 1.0)


def candle(
    symbol: str, timeframe: str, open_time: int, volume: float, closed: bool = True
) -> Candle:
    """A candle of ``symbol`` with only its volume of interest."""
    return Candle(symbol, timeframe, open_time, 1.0, 1.0, 1.0, 1.0, volume, closed, 1, 0)


def status(provider: str, time: int, state: str, error_kind: str | None = None) -> ProviderStatus:
    """A provider status."""
    return ProviderStatus(provider, time, state, error_kind=error_kind)


def topic_of(record: Record) -> str:
    """The topic a record of this type is read from."""
    if isinstance(record, Quote):
        return QUOTES
    return CANDLES if isinstance(record, Candle) else STATUSES


def sourced(records: Iterable[Record], partition: int = 0) -> list[tuple[Source, Record]]:
    """Records with their place in the log: offsets count per topic from 0."""
    offsets: dict[str, int] = {}
    events: list[tuple[Source, Record]] = []
    for record in records:
        topic = topic_of(record)
        offsets[topic] = offsets.get(topic, -1) + 1
        events.append((Source(topic, partition, offsets[topic]), record))
    return events
