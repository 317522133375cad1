"""Follows the compacted alert rules topic from its start: every live rule by id, and each
change as it arrives (the arbitration worker's evaluators and the gateway both need all)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka.structs import ConsumerRecord

from domain.alerts.rules import check_record
from runtime.intake import decode_or_skip
from runtime.kafka import make_consumer, partitions_once_created
from runtime.service import restarting
from runtime.settings import Settings
from schemas.alerts import AlertRule
from schemas.topics import TopicRole

log = logging.getLogger("fiml.alerts")

RESTART_DELAY = 1.0
Listener = Callable[[str, AlertRule | None], None]


class RuleFeed:
    """The rules of ``<prefix>.alerts.rules``; ``listener(rule_id, rule)`` hears each change
    (None for a tombstone). ``ready`` is set once the topic was read to its end at start."""

    def __init__(self, settings: Settings, listener: Listener | None = None) -> None:
        self.settings = settings
        self.topic = settings.topic(TopicRole.ALERT_RULES)
        self.listener = listener
        self.rules: dict[str, AlertRule] = {}
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Read the topic until cancelled; restart after unexpected errors."""
        await restarting(self._follow, "alert rules feed", log, RESTART_DELAY)

    async def _follow(self) -> None:
        partitions = await partitions_once_created(self.settings, self.topic, RESTART_DELAY)
        consumer = make_consumer(self.settings, "fiml-alert-rules")
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            read: set[bytes] | None = set()  # the keys read up to ``ends``, while catching up
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self.apply(record)
                        if read is not None and record.key is not None:
                            read.add(record.key)
                if read is not None:
                    positions = {tp: await consumer.position(tp) for tp in partitions}
                    if all(positions[tp] >= ends[tp] for tp in partitions):
                        self._drop_unread(read)
                        read = None
                        log.info("alert rules read: %d", len(self.rules))
                        self.ready.set()
        finally:
            await consumer.stop()

    def _drop_unread(self, read: set[bytes]) -> None:
        """After a restart read the topic again: drop the rules it no longer holds (their
        tombstones compacted away while the feed was down)."""
        for rule_id in [r for r in self.rules if r.encode() not in read]:
            del self.rules[rule_id]
            self._tell(rule_id, None)

    def apply(self, record: ConsumerRecord) -> None:
        """Take one record of the topic: a rule, a tombstone (keyed by rule id), or a skip."""
        if record.value is None:
            key = record.key
            rule_id = key.decode(errors="replace") if isinstance(key, bytes) else None
            if rule_id is not None and self.rules.pop(rule_id, None) is not None:
                self._tell(rule_id, None)
            return
        rule = decode_or_skip(record, AlertRule, check_record)
        if rule is not None:
            self.apply_rule(rule)

    def apply_rule(self, rule: AlertRule) -> None:
        """Take a rule known to be in the topic (read back, or just written)."""
        if self.rules.get(rule.rule_id) != rule:
            self.rules[rule.rule_id] = rule
            self._tell(rule.rule_id, rule)

    def _tell(self, rule_id: str, rule: AlertRule | None) -> None:
        if self.listener is not None:
            self.listener(rule_id, rule)
