"""The webhook delivery worker (``fiml alerts webhooks``): reads ``alerts.fired`` in the
consumer group ``<prefix>-webhooks`` and delivers the alerts of rules with a webhook
(:class:`arbitration.webhooks.WebhookSender`), up to ``MAX_IN_FLIGHT`` at once; what is
given up goes to ``alerts.webhooks.dlq``.

An offset is committed once every alert before it is settled (delivered, or its dead
letter acknowledged by the broker), so a restart tries again only what was not settled:
a receiver may get an alert twice then, and drops the repeat by its ``X-Fiml-Alert-Id``.
A settling that fails (the broker away for the dead letter) is tried again with backoff
rather than left to hold its partition's commits. Only partitions the worker holds are
committed: one the group takes away goes, with its unsettled alerts, to its next owner.

Health (``runtime/health.py``): live while its consumer keeps up (:class:`Progress` over the
partitions the group gave it; records waiting while all ``MAX_IN_FLIGHT`` deliveries are
under way wait on the receivers, not on it), ready once it joined the group and holds
partitions; ``fiml_webhook_deliveries_total`` counts what is settled, ``fiml_consumer_lag``
its lag. The endpoints are on ``FIML_HEALTH_PORT`` (off while 0).
"""

from __future__ import annotations

import asyncio
import logging
import random

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from arbitration.webhooks import WebhookSender
from domain.alerts.delivery import check_alert
from runtime.backoff import NETWORK
from runtime.health import Progress
from runtime.intake import decode_or_skip
from runtime.kafka import make_consumer, make_producer
from runtime.metrics import WEBHOOK_DELIVERIES, ConsumerLag
from runtime.settings import Settings
from schemas.alerts import FiredAlert
from schemas.codec import encode
from schemas.topics import TopicRole

log = logging.getLogger("fiml.webhooks")

MAX_IN_FLIGHT = 100


class WebhookWorker:
    """Reads fired alerts, delivers their webhooks, commits what is settled."""

    def __init__(self, settings: Settings, sender: WebhookSender) -> None:
        self.settings = settings
        self.sender = sender
        self.fired_topic = settings.topic(TopicRole.ALERTS_FIRED)
        self.dead_topic = settings.topic(TopicRole.WEBHOOK_DLQ)
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.in_flight: dict[TopicPartition, set[int]] = {}
        self.read_to: dict[TopicPartition, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.dead = 0
        self.progress = Progress(settings.consumer_stall_seconds)
        self.consumer: AIOKafkaConsumer | None = None

    def ready(self) -> bool:
        """The readiness check: joined the consumer group and holds partitions."""
        return self.why_not_ready() == ""

    def why_not_ready(self) -> str:
        """Why the worker is not ready; empty once it is."""
        if self.consumer is None:
            return "not connected to Kafka yet"
        if not self.consumer.assignment():
            return "no partition of alerts.fired assigned (joining the group, or idle)"
        return ""

    async def run(self) -> None:
        """Deliver until cancelled."""
        consumer = make_consumer(
            self.settings,
            "fiml-webhooks",
            group_id=f"{self.settings.topic_prefix}-webhooks",
            enable_auto_commit=False,
        )
        producer = make_producer(self.settings, "fiml-webhooks")
        await producer.start()
        await consumer.start()
        consumer.subscribe([self.fired_topic], listener=_Forget(self))
        self.consumer = consumer
        try:
            async with self.progress.watching(consumer, None, ConsumerLag(), self.slots.locked):
                await self._consume(consumer, producer)
        finally:
            self.consumer = None
            log.info("webhooks: %d delivered, %d dead letters", self.delivered, self.dead)
            for task in list(self.tasks):
                task.cancel()
            await consumer.stop()
            await producer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        """Read, deliver and commit until cancelled."""
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=MAX_IN_FLIGHT)
            for tp, records in batches.items():
                for record in records:
                    self.read_to[tp] = record.offset + 1
                    alert = decode_or_skip(record, FiredAlert, check_alert)
                    if alert is None or alert.webhook_url is None:
                        continue
                    await self.slots.acquire()
                    self.in_flight.setdefault(tp, set()).add(record.offset)
                    task = asyncio.create_task(self._settle(producer, tp, record.offset, alert))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
            await self._commit(consumer)

    async def _settle(
        self, producer: AIOKafkaProducer, tp: TopicPartition, offset: int, alert: FiredAlert
    ) -> None:
        """Deliver one alert, or write its dead letter; a failure is tried again with backoff
        (its offset stays uncommitted meanwhile, as after a restart)."""
        attempt = 0
        try:
            while not await self._settled(producer, alert):
                await asyncio.sleep(NETWORK.delay(attempt, random.Random()))
                attempt += 1
            self.in_flight.get(tp, set()).discard(offset)
        finally:
            self.slots.release()

    async def _settled(self, producer: AIOKafkaProducer, alert: FiredAlert) -> bool:
        """One try at delivering ``alert`` or writing its dead letter; False if it failed."""
        try:
            dead = await self.sender.deliver(alert)
            if dead is None:
                self.delivered += 1
                WEBHOOK_DELIVERIES.labels("delivered").inc()
            else:
                key = alert.alert_id.encode()
                await producer.send_and_wait(self.dead_topic, encode(dead), key=key)
                self.dead += 1
                WEBHOOK_DELIVERIES.labels("dead").inc()
            return True
        except Exception:
            log.exception("webhook delivery of alert %s failed; trying again", alert.alert_id)
            return False

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Forget how far partitions the group took away were read (their deliveries under
        way still settle, and hold the commit back should a partition come back)."""
        for tp in partitions:
            self.read_to.pop(tp, None)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        held = consumer.assignment()
        offsets = {}
        for tp, end in self.read_to.items():
            if tp not in held:
                continue
            pending = self.in_flight.get(tp)
            offsets[tp] = OffsetAndMetadata(min(pending) if pending else end, "")
        if offsets:
            await consumer.commit(offsets)


class _Forget(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the worker which partitions the group took away."""

    def __init__(self, worker: WebhookWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.worker.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass
