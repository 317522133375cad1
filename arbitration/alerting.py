"""The alerts agent: rules evaluated over quotes, candles and provider statuses.

One :class:`AlertEvaluator` per input partition number evaluates that partition of
``quotes``, ``candles`` and ``provider.status`` (a symbol's quotes and candles share a
partition number; a provider's statuses are in one partition, so each fires once). The rules
come from the compacted rules topic (:class:`runtime.alert_rules.RuleFeed`, read to its end
before the first record is evaluated, then followed); every evaluator gets every rule.

The agent takes its input a fetched partition batch at a time, with the batches queued behind
it (``arbitration/batch_agent.py``, as the quotes agent does); for each step it evaluates,
writes the fired alerts to the partition of the same number of ``alerts.fired`` (key: the
alert id), waits for them, writes the partitions' checkpoints
(``arbitration/alert_checkpoints.py``) and only then lets the batches be acknowledged, so
Faust never commits an offset its checkpoint does not cover: a restart fires nothing twice. A
Kafka error (the broker away) retries the step with backoff
from the partitions' checkpoints, as a restart would, instead of crashing the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from mode.types.signals import BaseSignalT

from arbitration.alert_checkpoints import Checkpoint, CheckpointStore
from arbitration.batch_agent import batch_topic, batches, until_delivered
from domain.alerts.firing import Source
from domain.alerts.rules import InvalidRule
from runtime.alert_rules import RuleFeed
from runtime.intake import Located, decode_or_skip
from runtime.settings import Settings
from schemas.alerts import AlertRule, FiredAlert
from schemas.codec import encode
from schemas.records import Candle, ProviderStatus, Quote
from schemas.topics import TopicRole

log = logging.getLogger("fiml.alerts")


class AlertWorker:
    """The evaluators of the partitions this worker was given, and their checkpoints."""

    def __init__(self, settings: Settings) -> None:
        self.inputs: dict[str, type] = {
            settings.topic(TopicRole.QUOTES): Quote,
            settings.topic(TopicRole.CANDLES): Candle,
            settings.topic(TopicRole.STATUS): ProviderStatus,
        }
        self.fired_topic = settings.topic(TopicRole.ALERTS_FIRED)
        self.rules = RuleFeed(settings, self.rule_changed)
        self.store = CheckpointStore(settings)
        self.partitions: dict[int, Checkpoint] = {}
        self.written: dict[int, set[str]] = {}
        self.evaluated = 0  # records of the batches done
        self.pending = 0  # records of the batch in hand

    def rule_changed(self, rule_id: str, rule: AlertRule | None) -> None:
        """Give a new, changed or removed rule to every evaluator."""
        for checkpoint in self.partitions.values():
            self._apply(checkpoint, rule_id, rule)

    @staticmethod
    def _apply(checkpoint: Checkpoint, rule_id: str, rule: AlertRule | None) -> None:
        if rule is None:
            checkpoint.evaluator.remove(rule_id)
            return
        try:
            checkpoint.evaluator.upsert(rule)
        except InvalidRule as error:  # the feed checked it; a newer version may refuse it
            log.warning("alert rule %s refused: %s", rule_id, error)

    async def _open(self, partition: int) -> Checkpoint:
        checkpoint = self.partitions.get(partition)
        if checkpoint is None:
            checkpoint, written = await self.store.load(partition)
            current = self.rules.rules
            checkpoint.evaluator.forget_all_but(current)  # the state of rules gone since
            for rule_id, rule in current.items():
                self._apply(checkpoint, rule_id, rule)
            self.partitions[partition], self.written[partition] = checkpoint, written
        return checkpoint

    async def process(self, producer: AIOKafkaProducer, records: Sequence[Located]) -> None:
        """Evaluate a batch, write its alerts, then the checkpoints of its partitions."""
        touched = sorted({record.partition for record in records})
        for partition in touched:
            await self._open(partition)
        alerts: dict[int, list[FiredAlert]] = {partition: [] for partition in touched}
        for message in records:
            checkpoint = self.partitions[message.partition]
            if message.offset < checkpoint.next.get(message.topic, 0):
                continue  # evaluated before the checkpoint
            checkpoint.next[message.topic] = message.offset + 1
            record = decode_or_skip(message, self.inputs[message.topic])
            if record is None:
                continue
            source = Source(message.topic, message.partition, message.offset)
            written = self.written[message.partition]
            for alert in checkpoint.evaluator.evaluate(record, source):
                if alert.alert_id not in written:
                    alerts[message.partition].append(alert)
        for partition, fired in alerts.items():
            checkpoint = self.partitions[partition]
            sends = [
                await producer.send(
                    self.fired_topic,
                    encode(alert),
                    key=alert.alert_id.encode(),
                    partition=partition,
                )
                for alert in fired
            ]
            for sent in sends:
                checkpoint.fired_next = (await sent).offset + 1
            await self.store.save(producer, partition, checkpoint)


def register_alerts(
    app: faust.App, settings: Settings, producer_of: Callable[[faust.App], AIOKafkaProducer]
) -> AlertWorker:
    """Add the alerts agent to the alerts worker's ``app``; the worker it runs."""
    worker = AlertWorker(settings)
    source = batch_topic(app, *worker.inputs)

    def revoked(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        worker.partitions.clear()  # reloaded from their checkpoints when given back

    app.on_partitions_revoked.connect(revoked)

    @app.agent(source, name="alerts")
    async def alerts(stream: faust.StreamT[bytes]) -> None:
        rules = asyncio.create_task(worker.rules.run())
        try:
            await worker.rules.ready.wait()
            producer = producer_of(app)
            async for group in batches(stream):  # acknowledged once its checkpoints are written
                records = [record for batch in group for record in batch.records]
                worker.pending = len(records)
                await until_delivered(  # the broker away: again from the checkpoints
                    functools.partial(worker.process, producer, records),
                    worker.partitions.clear,
                    "alerts batch",
                    log,
                )
                worker.evaluated += worker.pending
                worker.pending = 0
        finally:
            rules.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rules

    return worker
