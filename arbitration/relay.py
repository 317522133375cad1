"""At-least-once from the raw partitions to the output topics: a batch of raw records counts
as done only once the broker acknowledged every output made from it.

:meth:`Relay.deliver` runs a batch through the :class:`Arbiter`, hands the outputs to a
:class:`BatchSender` and waits for their acknowledgement. A partition whose outputs were not
acknowledged (a send failed or timed out, ``FIML_DELIVERY_TIMEOUT_SECONDS``), or whose
processing failed (restoring its state while the broker is away), is forgotten by the
arbiter and processed again after a backoff: its restore reads the markers of what did reach
the output partitions and writes only the rest, so the outputs end up complete and free of
duplicates. The worker acknowledges a batch's events to Faust, which then commits their
offsets, only after :meth:`Relay.deliver` returned; a worker stopped meanwhile commits none
of them, and its successor starts from the last committed offset.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable

from aiokafka.errors import KafkaError

from arbitration.arbiter import Arbiter
from arbitration.engine.outputs import Message
from arbitration.engine.partition import SourceRecord
from arbitration.sender import BatchSender, DeliveryFailed
from runtime.intake import skip
from runtime.metrics import OUTPUTS, TICKS_REJECTED
from schemas import DecodeError, RawTick, decode
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration")

UNDECODABLE = "undecodable"
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0

Batch = dict[int, list[SourceRecord]]
Done = list[tuple[SourceRecord, list[Message]]]


class Relay:
    """Delivers the outputs of raw batches for one worker."""

    def __init__(self, arbiter: Arbiter, names: dict[TopicRole, str]) -> None:
        self.arbiter = arbiter
        self.names = names
        self.pending = 0
        self.delivered = 0
        self.retrying = False

    async def deliver(self, sender: BatchSender, batch: Batch) -> None:
        """Return once every output of every record of ``batch`` (raw partition to its
        records in offset order) is acknowledged, retrying what failed until it is.
        ``pending`` counts the batch's records meanwhile, ``delivered`` the records done so
        far; ``retrying`` is set from a first failure until the batch is done."""
        self.pending = sum(len(records) for records in batch.values())
        attempt = 0
        try:
            while batch:
                failed = await self._attempt(sender, batch)
                self.delivered += sum(
                    len(records) for partition, records in batch.items() if partition not in failed
                )
                for partition in failed:
                    self.arbiter.forget(partition)
                batch = {partition: batch[partition] for partition in failed}
                if batch:
                    self.retrying = True
                    await asyncio.sleep(min(RETRY_MAX_S, RETRY_FIRST_S * 2**attempt))
                    attempt += 1
        finally:
            self.pending = 0
            self.retrying = False

    async def _attempt(self, sender: BatchSender, batch: Batch) -> set[int]:
        """Process and send ``batch`` once; the partitions that must be processed again."""
        done: dict[int, Done] = {}
        try:
            for partition, records in batch.items():
                results = await self.arbiter.handle_batch(partition, records)
                done[partition] = list(zip(records, results, strict=True))
                for record, outputs in done[partition]:
                    timestamp_ms = record.timestamp_us // 1000
                    for out in outputs:
                        sender.add(
                            self.names[out.role],
                            partition,
                            out.key,
                            out.value,
                            timestamp_ms,
                            out.headers,
                        )
            await sender.send()
        except DeliveryFailed as failure:
            log.warning(
                "outputs of raw partitions %s not acknowledged (%s); processing them "
                "again from what the output partitions hold",
                sorted(failure.partitions),
                failure,
            )
            failed = failure.partitions & batch.keys()
        except Exception as error:  # a restore without a broker, or anything: never lose a batch
            log.warning(
                "raw partitions %s not processed (%s: %s); processing them again",
                sorted(batch),
                type(error).__name__,
                error,
                exc_info=not isinstance(error, KafkaError | OSError),
            )
            sender.clear()
            return set(batch)
        else:
            failed = set()
        for partition, handled in done.items():
            if partition not in failed:
                self._count(partition, handled)
        return failed

    def _count(self, partition: int, done: Done) -> None:
        """Count the delivered outputs by kind and rejections by reason; count and log each
        undecodable record as every consumer does (``runtime/intake.py``)."""
        count_outputs(out for _, outputs in done for out in outputs)
        for record, outputs in done:
            if any(out.reason == UNDECODABLE for out in outputs):
                try:
                    decode(record.value, RawTick)
                except DecodeError as error:
                    skip(self.arbiter.raw_topic, partition, record.offset, error.reason, str(error))


def count_outputs(outputs: Iterable[Message]) -> None:
    """Count written outputs by kind, and rejections by their reason."""
    kinds: Counter[TopicRole] = Counter()
    reasons: Counter[str] = Counter()
    for out in outputs:
        kinds[out.role] += 1
        if out.reason is not None:
            reasons[out.reason] += 1
    for kind, n in kinds.items():
        OUTPUTS.labels(kind).inc(n)
    for reason, n in reasons.items():
        TICKS_REJECTED.labels(reason).inc(n)
