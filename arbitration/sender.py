"""Outputs sent as whole record batches, one per topic partition, instead of one by one, and
awaited until the broker acknowledged each.

``AIOKafkaProducer.send`` costs a future, an accumulator look-up and a batch append per
record; :class:`BatchSender` appends each record to a :class:`BatchBuilder` of its topic
partition and hands the filled builders to the producer with ``send_batch``. Each builder is
closed first: the batch is complete, and aiokafka sends a closed batch at once instead of
holding it for the producer's linger.

:meth:`BatchSender.send` returns once every batch is acknowledged, or raises
:class:`DeliveryFailed` naming the partitions whose batches were not. The batches of one
topic partition go one after another, each once the one before it is acknowledged (aiokafka
has only one in flight per partition anyway), so after a failure what reached a partition is
still a prefix of what was sent to it: the markers then say exactly what is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

from arbitration.engine.outputs import Message
from runtime.settings import Settings

Headers = Sequence[tuple[str, bytes]]
Where = tuple[str, int]


class DeliveryFailed(Exception):
    """Batches of some partitions were not acknowledged; ``errors`` holds why, per topic
    partition, and ``partitions`` the partition numbers."""

    def __init__(self, errors: dict[Where, BaseException]) -> None:
        self.errors = errors
        self.partitions = {partition for _, partition in errors}
        where, error = next(iter(errors.items()))
        super().__init__(
            f"{len(errors)} topic partitions not delivered, e.g. {where[0]}-"
            f"{where[1]}: {type(error).__name__}: {error}"
        )


class BatchSender:
    """Collects records per topic partition; :meth:`send` delivers them as batches."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._open: dict[Where, BatchBuilder] = {}
        self._full: list[tuple[Where, BatchBuilder]] = []

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes,
        timestamp_ms: int,
        headers: Headers,
    ) -> None:
        """Queue one record for ``partition`` of ``topic``."""
        where = (topic, partition)
        builder = self._open.get(where)
        if builder is None:
            builder = self._open[where] = self.producer.create_batch()
        if builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers) is None:
            self._full.append((where, builder))
            builder = self._open[where] = self.producer.create_batch()
            builder.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)

    def clear(self) -> None:
        """Forget every queued record."""
        self._full.clear()
        self._open.clear()

    async def send(self) -> None:
        """Deliver every queued batch, in the order the records were added per partition;
        raise :class:`DeliveryFailed` once every partition is done if any failed."""
        chains: dict[Where, list[BatchBuilder]] = {}
        for where, builder in [*self._full, *self._open.items()]:
            chains.setdefault(where, []).append(builder)
        self.clear()
        outcomes = await asyncio.gather(
            *(self._deliver(where, builders) for where, builders in chains.items()),
            return_exceptions=True,
        )
        errors = {
            where: outcome
            for where, outcome in zip(chains, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        }
        for error in errors.values():
            if isinstance(error, asyncio.CancelledError):
                raise error
        if errors:
            raise DeliveryFailed(errors)

    async def _deliver(self, where: Where, builders: list[BatchBuilder]) -> None:
        topic, partition = where
        for builder in builders:
            builder.close()
            await (await self.producer.send_batch(builder, topic, partition=partition))


async def send_each(
    producer: AIOKafkaProducer,
    target: Settings,
    partition: int,
    timestamp_us: int,
    messages: Iterable[Message],
) -> list[asyncio.Future[Any]]:
    """Send ``messages`` one by one to their topics of ``target``, in ``partition`` with the
    input's Kafka time (a rebuild's path): their delivery futures."""
    return [
        await producer.send(
            target.topic(message.role),
            message.value,
            key=message.key,
            partition=partition,
            timestamp_ms=timestamp_us // 1000,
            headers=message.headers,
        )
        for message in messages
    ]
