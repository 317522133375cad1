"""Outputs sent as whole record batches, one per topic partition, instead of one by one.

``AIOKafkaProducer.send`` costs a future, an accumulator look-up and a batch append per
record; :class:`BatchSender` appends each record to a :class:`BatchBuilder` of its topic
partition and hands the filled builders to the producer with ``send_batch``. The producer
keeps them until they are delivered, so ``producer.flush()`` (which Faust awaits before it
commits offsets) still covers them. Each builder is closed first: the batch is complete, and
aiokafka sends a closed batch at once instead of holding it for the producer's linger.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

Headers = Sequence[tuple[str, bytes]]


class BatchSender:
    """Collects records per topic partition; :meth:`send` submits them as batches."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._open: dict[tuple[str, int], BatchBuilder] = {}
        self._full: list[tuple[tuple[str, int], BatchBuilder]] = []

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes,
            timestamp_ms: int, headers: Headers) -> None:
        """Queue one record for ``partition`` of ``topic``."""
        where = (topic, partition)
        builder = self._open.get(where)
        if builder is None:
            builder = self._open[where] = self.producer.create_batch()
        if builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers) is None:
            self._full.append((where, builder))
            builder = self._open[where] = self.producer.create_batch()
            builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)

    async def send(self) -> None:
        """Hand every queued batch to the producer, in the order the records were added."""
        batches = [*self._full, *self._open.items()]
        self._full.clear()
        self._open.clear()
        for (topic, partition), builder in batches:
            builder.close()
            await self.producer.send_batch(builder, topic, partition=partition)
