"""The newest records of a topic: the last few of each partition, read once."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from fiml.kafka_clients import make_consumer, topic_partitions
from fiml.settings import Settings


async def read_tail(settings: Settings, topic: str, count: int) -> list[ConsumerRecord]:
    """Up to the last ``count`` records of each partition of ``topic`` (none if it does not
    exist), per partition in offset order."""
    partitions = await topic_partitions(settings, topic)
    if not partitions:
        return []
    consumer = make_consumer(settings, "fiml-tail")
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        pending = set()
        for tp in partitions:
            if ends[tp] > starts[tp]:
                consumer.seek(tp, max(starts[tp], ends[tp] - count))
                pending.add(tp)
        found: list[ConsumerRecord] = []
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                found.extend(record for record in records if record.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return found
    finally:
        await consumer.stop()
