"""One partition's records of one poll, as batch delivery hands them to the agent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiokafka.structs import ConsumerRecord
from faust.types import TP

if TYPE_CHECKING:
    from arbitration.batch_delivery import BatchConsumer


class PartitionBatch:
    """The records of one partition from one poll, handed to the agent as one value. It has
    what ``Consumer.wait_empty`` reads of a message (``acked``, ``refcount``, a weak
    reference), so it sits in ``Consumer._unacked_messages`` while the agent processes it."""

    __slots__ = (
        "__weakref__",
        "acked",
        "consumer",
        "generation_id",
        "records",
        "refcount",
        "tp",
        "tracked",
    )

    def __init__(
        self,
        consumer: BatchConsumer,
        tp: TP,
        records: Sequence[ConsumerRecord],
        generation_id: int,
        refcount: int,
    ) -> None:
        self.consumer = consumer
        self.tp = tp
        self.records = records
        self.generation_id = generation_id
        self.refcount = refcount
        self.acked = False
        self.tracked = False

    def __repr__(self) -> str:
        return (
            f"<PartitionBatch {self.tp.topic}[{self.tp.partition}] {self.records[0].offset}.."
            f"{self.records[-1].offset} gen={self.generation_id}>"
        )
