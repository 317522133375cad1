"""Typed records of alerts, one per Avro schema: rules, fired alerts, webhook dead letters.

Times are integers, microseconds since the Unix epoch, UTC; durations are microseconds too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A rule of one owner over symbols (or providers); only its kind's parameters are set."""

    rule_id: str
    owner: str
    kind: str
    mode: str
    cooldown_us: int
    created_at: int
    symbols: list[str]
    providers: list[str]
    level: float | None = None
    pct: float | None = None
    direction: str | None = None
    window_us: int | None = None
    factor: float | None = None
    lookback: int | None = None
    timeframe: str | None = None
    silence_us: int | None = None
    webhook_url: str | None = None
    deleted_at: int | None = None


@dataclass(frozen=True, slots=True)
class FiredAlert:
    """One firing of a rule for one subject, with the input record that fired it."""

    alert_id: str
    rule_id: str
    owner: str
    kind: str
    subject: str
    ts_event: int
    values: dict[str, float]
    message: str
    source_topic: str
    source_partition: int
    source_offset: int
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookDeadLetter:
    """A fired alert whose webhook delivery was given up, with the body that was signed."""

    alert_id: str
    rule_id: str
    owner: str
    webhook_url: str
    body: bytes
    reason: str
    attempts: int
    first_attempt_at: int
    last_attempt_at: int
    last_status: int | None = None
    last_error: str | None = None
