"""The gateway's view of alerts: every rule (from the rules topic), the rules it publishes
for owners, and the fired alerts it hands to their owners' connections as they arrive.

Rules are created and deleted here for REST and WebSocket alike: a new rule gets a random id
and ``created_at`` = now + ``FIML_ALERT_RULE_LEAD_MS``, so that it reaches the evaluators
before the records it may fire on (the evaluation is on event time, so a rule sees only the
records from its ``created_at``). A deletion writes the rule again with ``deleted_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaProducer

from domain.alerts.delivery import check_alert, rule_secret
from domain.alerts.rules import InvalidRule, parse_rule, rule_view
from runtime.alert_rules import RuleFeed
from runtime.clock import now_micros
from runtime.intake import decode_or_skip
from runtime.kafka import make_consumer, make_producer, partitions_once_created
from runtime.service import restarting
from runtime.settings import Settings
from schemas.alerts import AlertRule, FiredAlert
from schemas.codec import encode
from schemas.topics import TopicRole

log = logging.getLogger("fiml.gateway.alerts")

RECENT_IDS = 10_000
RESTART_DELAY = 1.0
Listener = Callable[[FiredAlert], None]


class AlertsUnavailable(RuntimeError):
    """The gateway has not read the rules yet, or cannot write to Kafka."""


class AlertBook:
    """Rules by owner, their publication, and fired alerts to their owners' listeners."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.feed = RuleFeed(settings)
        self.rules_topic = settings.topic(TopicRole.ALERT_RULES)
        self.fired_topic = settings.topic(TopicRole.ALERTS_FIRED)
        self.listeners: dict[str, set[Listener]] = {}
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.producer: AIOKafkaProducer | None = None
        self.following = asyncio.Event()

    def owned(self, owner: str) -> list[AlertRule]:
        """The live (not deleted) rules of ``owner``, oldest first."""
        rules = [
            rule
            for rule in self.feed.rules.values()
            if rule.owner == owner and rule.deleted_at is None
        ]
        return sorted(rules, key=lambda rule: (rule.created_at, rule.rule_id))

    async def create(self, owner: str, data: Mapping[str, object]) -> AlertRule:
        """Publish a new rule of ``owner`` from client input; InvalidRule if it is not one."""
        self._check_ready()
        created_at = now_micros() + self.settings.alert_rule_lead_ms * 1000
        rule_id = "r_" + secrets.token_hex(8)
        rule = parse_rule(
            data,
            rule_id=rule_id,
            owner=owner,
            created_at=created_at,
            owner_rules=len(self.owned(owner)),
        )
        await self._publish(rule)
        return rule

    async def delete(self, owner: str, rule_id: str) -> AlertRule:
        """Publish the deletion of a live rule of ``owner``; InvalidRule if it has none such."""
        self._check_ready()
        rule = self.feed.rules.get(rule_id)
        if rule is None or rule.owner != owner or rule.deleted_at is not None:
            raise InvalidRule(f"no rule {rule_id!r} of yours")
        deleted = dataclasses.replace(rule, deleted_at=max(now_micros(), rule.created_at))
        await self._publish(deleted)
        return deleted

    def created_view(self, rule: AlertRule) -> dict[str, object]:
        """A new rule as its owner sees it once: with its webhook's signing secret, when it
        has a webhook and the server a secret (``FIML_ALERT_WEBHOOK_SECRET``)."""
        view = rule_view(rule)
        server_secret = self.settings.alert_webhook_secret
        if rule.webhook_url is not None and server_secret:
            view["webhook_secret"] = rule_secret(server_secret.encode(), rule.rule_id).decode()
        return view

    def rule_to_try(
        self, owner: str, data: Mapping[str, object] | None, rule_id: str | None
    ) -> AlertRule:
        """The rule a back-test of ``owner`` tries: one of its rules by id, or new client
        input (id ``backtest``); InvalidRule otherwise."""
        if (data is None) == (rule_id is None):
            raise InvalidRule("give either rule (a new rule) or rule_id (one of yours)")
        if rule_id is not None:
            rule = self.feed.rules.get(rule_id)
            if rule is None or rule.owner != owner:
                raise InvalidRule(f"no rule {rule_id!r} of yours")
            return rule
        assert data is not None
        return parse_rule(data, rule_id="backtest", owner=owner, created_at=0, owner_rules=0)

    def _check_ready(self) -> None:
        if not self.feed.ready.is_set() or self.producer is None:
            raise AlertsUnavailable("alert rules are not read yet; retry shortly")

    async def _publish(self, rule: AlertRule) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(self.rules_topic, encode(rule), key=rule.rule_id.encode())
        self.feed.apply_rule(rule)

    def listen(self, owner: str, listener: Listener) -> None:
        """Hand ``owner``'s alerts to ``listener`` from now on."""
        self.listeners.setdefault(owner, set()).add(listener)

    def unlisten(self, owner: str, listener: Listener) -> None:
        """Stop handing alerts to ``listener``."""
        listeners = self.listeners.get(owner)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self.listeners[owner]

    def deliver(self, alert: FiredAlert) -> None:
        """Hand a fired alert to its owner's listeners, once per alert id."""
        if alert.alert_id in self.recent:
            return
        self.recent[alert.alert_id] = None
        if len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)
        for listener in list(self.listeners.get(alert.owner, ())):
            listener(alert)

    async def run(self) -> None:
        """Follow the rules and the fired alerts, and hold the producer, until cancelled;
        restart after unexpected errors."""
        rules = asyncio.create_task(self.feed.run())
        try:
            await restarting(self._serve, "alerts feed", log, RESTART_DELAY)
        finally:
            rules.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rules

    async def _serve(self) -> None:
        producer = make_producer(self.settings, "fiml-gateway-alerts")
        await producer.start()
        try:
            self.producer = producer
            await self._follow_fired()
        finally:
            self.producer = None
            await producer.stop()

    async def _follow_fired(self) -> None:
        partitions = await partitions_once_created(self.settings, self.fired_topic, RESTART_DELAY)
        consumer = make_consumer(self.settings, "fiml-gateway-alerts")
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for partition in partitions:
                await consumer.position(partition)
            self.following.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                for records in batches.values():
                    for record in records:
                        alert = decode_or_skip(record, FiredAlert, check_alert)
                        if alert is not None:
                            self.deliver(alert)
        finally:
            self.following.clear()
            await consumer.stop()
