"""Where a keyed record lives: the partition Kafka's default partitioner (murmur2 of the
key, the same in the Java client and in aiokafka) gives it. Ingest writes every raw tick
with its symbol as key, and arbitration writes what it derives from a raw partition to the
same partition number of each output topic, so a symbol's records are all in one
partition of every topic keyed by symbol (docs/topics.md)."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` in a topic of ``partitions`` partitions."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
