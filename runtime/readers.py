"""The Kafka clients that read topics back (``runtime/replay.py``), shared by a service.

A :class:`ReaderPool` holds one admin client (to find a topic's partitions) and up to
``size`` consumers without a group, each started once and reused by one reader after
another: a reader takes one, assigns and seeks its partitions, and gives it back with
every partition paused (the next reader's assignment replaces them; changing the assignment
right before a consumer stops can leave aiokafka's fetch task running). A reader that finds
every consumer taken waits for one. The gateway keeps one
pool for its history requests and replays and closes it on shutdown; a replay made without
a pool (the CLI) has a pool of one of its own, closed with it.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from runtime.kafka import described_partitions, make_admin, make_consumer
from runtime.settings import Settings

# What a consumer fetches per partition at once: about what a reader holds per partition.
FETCH_BYTES = 256 * 1024


class ReaderPool:
    """One admin client and at most ``size`` reused consumers (see the module docstring)."""

    def __init__(self, settings: Settings, size: int) -> None:
        self.settings = settings
        self.size = size
        self.created = 0
        self.idle: list[AIOKafkaConsumer] = []
        self._free = asyncio.Semaphore(size)
        self._admin: AIOKafkaAdminClient | None = None
        self._admin_started = asyncio.Lock()
        self._closed = False

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of ``topic``, or none if the cluster does not have it."""
        async with self._admin_started:
            if self._admin is None:
                admin = make_admin(self.settings)
                await admin.start()
                self._admin = admin
        return await described_partitions(self._admin, topic)

    async def take(self) -> AIOKafkaConsumer:
        """A started consumer fetching nothing, once one is free."""
        await self._free.acquire()
        if self.idle:
            return self.idle.pop()
        consumer = make_consumer(
            self.settings, "fiml-replay", max_partition_fetch_bytes=FETCH_BYTES
        )
        try:
            await consumer.start()
        except BaseException:
            self._free.release()
            raise
        self.created += 1
        return consumer

    async def give(self, consumer: AIOKafkaConsumer) -> None:
        """Take ``consumer`` back (stopped if the pool is closed)."""
        self._free.release()
        if self._closed:
            await consumer.stop()
            return
        consumer.pause(*consumer.assignment())
        self.idle.append(consumer)

    async def close(self) -> None:
        """Stop the idle consumers and the admin client; those still taken stop when given
        back."""
        self._closed = True
        idle, self.idle = self.idle, []
        for consumer in idle:
            await consumer.stop()
        if self._admin is not None:
            admin, self._admin = self._admin, None
            await admin.close()
