"""Checkpoints of the alert evaluators, one per input partition number, in the compacted
topic ``<prefix>.alerts.state`` (key: the partition number).

A checkpoint is zlib-compressed JSON: the evaluator's snapshot without its rules (they are
in the rules topic, and upserted again on restore: ``domain/alerts/snapshot.py``),
``next``: per input topic the first offset it has not seen, and ``fired_next``: the end of
that partition of ``alerts.fired`` once the alerts of those records were written. A restart
restores the evaluator, skips the input before ``next``, and does not write again the
alerts found in ``alerts.fired`` from ``fired_next`` (written after the checkpoint by a run
that stopped before its next one): the same records fire the same alert ids.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from domain.alerts.evaluator import AlertEvaluator
from domain.alerts.snapshot import restore, snapshot
from runtime.intake import INVALID, skip
from runtime.kafka import read_until_end
from runtime.settings import Settings
from schemas.topics import TopicRole

log = logging.getLogger("fiml.alerts")

MAX_CHECKPOINT_BYTES = 900_000
MAX_STATE_BYTES = 32 * 1024 * 1024


@dataclass
class Checkpoint:
    """An evaluator and where in the log it is."""

    evaluator: AlertEvaluator = field(default_factory=AlertEvaluator)
    next: dict[str, int] = field(default_factory=dict)
    fired_next: int = 0


class CheckpointTooLarge(RuntimeError):
    """A checkpoint :func:`decode` would refuse: the worker stops instead of writing it,
    since its batch may only be acknowledged once a readable checkpoint covers it."""


def encode(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as the state topic's value; CheckpointTooLarge past the limits that
    :func:`decode` holds it to."""
    data = {
        "snapshot": snapshot(checkpoint.evaluator, rules=False),
        "next": checkpoint.next,
        "fired_next": checkpoint.fired_next,
    }
    text = orjson.dumps(data)
    value = zlib.compress(text, 1)
    if len(text) > MAX_STATE_BYTES or len(value) > MAX_CHECKPOINT_BYTES:
        raise CheckpointTooLarge(
            f"{len(text)} bytes ({len(value)} compressed), over the limits of "
            f"{MAX_STATE_BYTES} ({MAX_CHECKPOINT_BYTES} compressed)"
        )
    return value


def decode(value: bytes) -> Checkpoint:
    """The checkpoint of a state topic value; ValueError for anything else."""
    if len(value) > MAX_CHECKPOINT_BYTES:
        raise ValueError(f"{len(value)} bytes, over the limit of {MAX_CHECKPOINT_BYTES}")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(value, MAX_STATE_BYTES)
    except zlib.error as error:
        raise ValueError(f"not zlib data: {error}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("oversize or truncated")
    data: Any = orjson.loads(text)
    try:
        return Checkpoint(
            restore(data["snapshot"]),
            {str(topic): int(offset) for topic, offset in data["next"].items()},
            int(data["fired_next"]),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a checkpoint: {type(error).__name__}: {error}") from None


class CheckpointStore:
    """Reads and writes the checkpoints of partitions (partition ``p``'s in partition ``p``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic(TopicRole.ALERTS_STATE)
        self.fired = settings.topic(TopicRole.ALERTS_FIRED)

    async def load(self, partition: int) -> tuple[Checkpoint, set[str]]:
        """The partition's last checkpoint (a fresh one if none is usable), and the ids of
        the alerts written after it."""
        checkpoint = Checkpoint()
        state = TopicPartition(self.topic, partition)
        for record in await read_until_end(self.settings, [state]):
            if record.value is not None and record.key == str(partition).encode():
                try:
                    checkpoint = decode(record.value)
                except ValueError as error:
                    skip(record.topic, record.partition, record.offset, "corrupt", str(error))
        fired = TopicPartition(self.fired, partition)
        records = await read_until_end(
            self.settings, [fired], lambda start, end: checkpoint.fired_next
        )
        written = {key for record in records if (key := alert_id(record)) is not None}
        if records:
            checkpoint.fired_next = records[-1].offset + 1
        return checkpoint, written

    async def save(
        self, producer: AIOKafkaProducer, partition: int, checkpoint: Checkpoint
    ) -> None:
        """Write the checkpoint and wait for the broker's acknowledgement."""
        sent = await producer.send(
            self.topic, encode(checkpoint), key=str(partition).encode(), partition=partition
        )
        await sent


def alert_id(record: ConsumerRecord) -> str | None:
    """The id of the alert of an ``alerts.fired`` record: its key; None (skipped as
    ``invalid``) for a record without one or with one no alert has."""
    key = record.key
    if key is not None:
        with contextlib.suppress(UnicodeDecodeError):
            return str(key.decode())
    skip(record.topic, record.partition, record.offset, INVALID, f"no alert id in key {key!r}")
    return None
