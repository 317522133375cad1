"""When a rule fires for a subject (armed, cooldown, once), and the alert it fires."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

from schemas.alerts import AlertRule, FiredAlert

EVENT_KINDS = frozenset({"crosses", "volume_spike"})


class Source(NamedTuple):
    """Where an input record is in the log."""

    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class Watch:
    """What one rule remembers of one subject (a symbol, or a provider).

    ``previous`` is the last price (crosses), ``last_seen`` the last quote's event time and
    ``scheduled`` the due time of its timer (stale), ``side`` the sign of the last move that
    fired (change_pct).
    """

    armed: bool = True
    done: bool = False
    last_fired: int | None = None
    previous: float | None = None
    last_seen: int | None = None
    scheduled: int | None = None
    side: int = 0

    def to_data(self) -> list[Any]:
        """Plain data, in field order."""
        return [
            self.armed,
            self.done,
            self.last_fired,
            self.previous,
            self.last_seen,
            self.scheduled,
            self.side,
        ]


def sees(rule: AlertRule, time: int) -> bool:
    """Whether a record of event ``time`` is in the rule's life: ``[created_at, deleted_at)``."""
    return rule.created_at <= time and (rule.deleted_at is None or time < rule.deleted_at)


def gate(rule: AlertRule, watch: Watch, holds: bool, time: int) -> bool:
    """Whether the rule fires for the subject now, its condition ``holds`` at event ``time``.

    A condition that holds fires when the subject is armed, not done and out of cooldown
    (``time >= last firing + cooldown``). A state kind then disarms until its condition is
    seen false again; an event kind (crosses, volume_spike) stays armed. ``once`` makes the
    subject done after its first firing.
    """
    if not holds:
        watch.armed = True
        return False
    if watch.done or not watch.armed:
        return False
    if watch.last_fired is not None and time < watch.last_fired + rule.cooldown_us:
        return False
    watch.last_fired = time
    watch.armed = rule.kind in EVENT_KINDS
    watch.done = rule.mode == "once"
    return True


def alert_id(rule_id: str, subject: str, source: Source) -> str:
    """32 hex digits of SHA-256 over the rule, the subject and the input's place in the log."""
    text = "\x1f".join((rule_id, subject, source.topic, str(source.partition), str(source.offset)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def fired(
    rule: AlertRule, subject: str, time: int, source: Source, values: dict[str, float], message: str
) -> FiredAlert:
    """The alert of ``rule`` firing for ``subject`` at event ``time`` on the input at ``source``."""
    return FiredAlert(
        alert_id(rule.rule_id, subject, source),
        rule.rule_id,
        rule.owner,
        rule.kind,
        subject,
        time,
        values,
        message,
        source.topic,
        source.partition,
        source.offset,
        rule.webhook_url,
    )
