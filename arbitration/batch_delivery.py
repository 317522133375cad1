"""Batch delivery inside Faust: the agents of the topics named with ``batch_topic`` get one
fetched partition batch per step instead of one event per record.

faust-streaming delivers every record alone: ``Consumer._drain_messages`` awaits
``wait_first(callback(message), suspend_flow.wait())`` per record, the conductor decodes it
into an Event and queues it, and the stream takes it off with a ``sleep(0)``, sensor calls
and an ack: about 72 CPU µs per record before the agent does anything. Here the consumer puts
one :class:`PartitionBatch` (a partition's records of one poll, aiokafka ``ConsumerRecord``
objects as fetched, ``partition_batch.py``) on the agent's channel queue for each topic
named with ``batch_topic`` (``batch_agent.py``); every other topic keeps Faust's path.

What stays Faust's: group membership and rebalancing, the fetch loop (``_drain_messages``
calls :meth:`BatchConsumer.getmany`), the agent and its supervisor, flow control, the
channel queue (bounded in batches; a full one blocks the fetch loop), the ack bookkeeping
(``_acked``, ``_acked_index``, ``_n_acked``, ``_unacked_messages``, gaps) and the commit path
that reads it (``Consumer.commit`` flushes the producer, then commits the consecutive acked
offsets): at least once.

The rule of faust-streaming PR #223 holds per batch: a batch is dropped (never acked, so never
committed; the rebalance's seek to the committed offsets fetches it again) when flow is
suspended or the consumer generation changed, in the consumer (before and while handing it
over) and in the agent (when it takes it off the queue). The internals this relies on are
listed in ``arbitration/README.md`` and pinned by ``tests/test_faust_contract.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from time import monotonic
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.transport import drivers
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from arbitration.partition_batch import PartitionBatch
from runtime.kafka import FETCH_MAX_WAIT_MS
from runtime.private import private_attribute

log = logging.getLogger("fiml.arbitration")

SCHEME = "kafka+batch"


class BatchConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose fetches wait at most ``FETCH_MAX_WAIT_MS`` for data, as
    every other consumer of ours (Faust's driver asks for 1.5 s).

    aiokafka keeps one fetch in flight per broker, for the partitions without buffered
    records. When those have no new data (the partitions a backlog has run out of, the
    worker's quiet topics), the fetch waits at the broker for ``fetch_max_wait_ms``, and a
    partition that runs out of buffered records meanwhile is not fetched until it returns:
    with Faust's 1.5 s, a worker catching up on a backlog that only some partitions still
    held ran at half its speed, and new ticks behind such a fetch waited up to 1.5 s."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        private_attribute(consumer, "_fetch_max_wait_ms", "aiokafka")
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BatchConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer, delivering the records of batch topics a partition at a
    time; other topics go through ``Consumer.getmany``'s per-record path unchanged.

    Faust's pause-under-pressure is not used: with every partition paused,
    ``_wait_next_records`` sleeps a whole second, and a queue of a few batches drains much
    sooner; a full queue blocks the fetch loop instead, as the conductor's does."""

    dropped_batches = 0

    def _new_consumer_thread(self) -> BatchConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def batch_topics(self) -> set[str]:
        """The topics delivered in batches (:func:`batch_topic`)."""
        transport: Transport = self.transport  # type: ignore[assignment]
        return transport.batch_topics

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109
        """``Consumer.getmany`` with the records of batch topics delivered here, a partition
        at a time, before the other records are yielded one by one as Faust does."""
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # As Consumer.getmany: records fetched while flow stopped are not delivered,
            # and the position goes back to the committed offsets.
            try:
                await self.perform_seek()
            except Exception as error:
                log.warning("seek while flow is stopped failed: %s", error)
            return
        batch_topics = self.batch_topics
        rest: dict[TP, list[ConsumerRecord]] = {}
        for tp, tp_records in records.items():
            if tp.topic not in batch_topics:
                rest[tp] = tp_records
            elif not await self._deliver(tp, tp_records, generation_id, active_partitions):
                return  # flow stopped or the generation changed: drop the rest of the poll
        to_message = self._to_message
        for tp, record in self.scheduler.iterate(rest):
            if not self._still_current(generation_id):
                break
            if self._active(tp, active_partitions):
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                yield tp, to_message(tp, record)

    def _still_current(self, generation_id: int) -> bool:
        return bool(self.flow_active) and self.app.consumer_generation_id == generation_id

    def _active(self, tp: TP, active_partitions: set[TP] | None) -> bool:
        return (
            active_partitions is None
            or tp in active_partitions
            or (tp in self._buffered_partitions)
        )

    async def _deliver(
        self,
        tp: TP,
        records: list[ConsumerRecord],
        generation_id: int,
        active_partitions: set[TP] | None,
    ) -> bool:
        """Hand one partition's records to the channels subscribed to ``tp``, doing once per
        batch what ``_drain_messages`` and the conductor do per record; False when the batch
        was dropped because flow stopped or the generation changed."""
        if not self._still_current(generation_id):
            return self._dropped(tp, records, "before delivery")
        if not self._active(tp, active_partitions):
            return True
        read_offset = self._read_offset[tp]
        if read_offset is not None and records[0].offset < read_offset:
            records = [record for record in records if record.offset >= read_offset]
            if not records:
                return True
        app = self.app
        if app.topics.acks_enabled_for(tp.topic):
            await self._add_gaps(tp, read_offset, records)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        buffer = app.producer.buffer
        if buffer.size > buffer.max_messages and not await self._unless_suspended(
            buffer.wait_until_ebb()
        ):
            return self._dropped(tp, records, "waiting for the producer buffer")
        conductor: Any = app.topics
        async with conductor._tp_to_callback_lock:
            channels = list(conductor._tp_index.get(tp, ()))
        if not channels:
            return True
        if not self._still_current(generation_id):
            return self._dropped(tp, records, "before delivery")
        batch = PartitionBatch(self, tp, records, generation_id, len(channels))
        for channel in channels:
            queue = channel.queue
            if not queue.full():
                queue.put_nowait(batch)
                continue
            app.sensors.on_topic_buffer_full(tp)
            if not await self._unless_suspended(_put_unless_cleared(queue, batch)):
                return self._dropped(tp, records, "waiting for a full queue")
        self._read_offset[tp] = records[-1].offset
        app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        return True

    def _dropped(self, tp: TP, records: Sequence[ConsumerRecord], when: str) -> bool:
        self.dropped_batches += 1
        log.info(
            "dropped %s[%s] %s..%s %s: flow stopped or the generation changed",
            tp.topic,
            tp.partition,
            records[0].offset,
            records[-1].offset,
            when,
        )
        return False

    async def _add_gaps(
        self, tp: TP, read_offset: int | None, records: list[ConsumerRecord]
    ) -> None:
        """Record the offsets missing before and inside ``records`` (compacted records,
        transaction markers) as gaps, so commits can pass them, as ``_drain_messages`` does
        record by record (unlike it, a gap never includes the offset that follows it)."""
        first, last = records[0].offset, records[-1].offset
        if read_offset and first - read_offset > 1:
            await self._add_gap(tp, read_offset + 1, first - 1)
        if last - first + 1 != len(records):
            previous = first
            for record in records:
                if record.offset - previous > 1:
                    await self._add_gap(tp, previous + 1, record.offset - 1)
                previous = record.offset

    async def _unless_suspended(self, work: Awaitable[Any]) -> bool:
        """Await ``work`` unless flow is suspended first (then cancel it), as
        ``_drain_messages`` does per message; True when it finished, not returning False,
        with flow still on."""
        result = await self.wait_first(work, self.suspend_flow.wait())
        if self.suspend_flow.is_set():
            return False
        for winner, value in zip(result.done, result.results, strict=True):
            if winner is work:
                return value is not False
        return False  # the service stopped or crashed meanwhile

    def admit(self, batch: PartitionBatch) -> bool:
        """The agent's side of the PR #223 rule: False (the batch is dropped, never acked)
        when flow is suspended or the generation changed since the fetch; otherwise track
        the batch as in process, as the stream tracks a message it takes."""
        app = self.app
        if not app.flow_control.is_active() or batch.generation_id != app.consumer_generation_id:
            return self._dropped(batch.tp, batch.records, "taken by the agent")
        if not batch.tracked:
            batch.tracked = True
            self._unacked_messages.add(batch)  # type: ignore[arg-type]
        # What Monitor.on_stream_event_in records and the livelock detector
        # (verify_event_path) reads: without it, a lagging partition would be reported as
        # "Stream has not started processing" once stream_processing_timeout passed.
        app.monitor.stream_inbound_time[batch.tp] = monotonic()
        return True

    def release(self, batch: PartitionBatch) -> None:
        """Stop tracking a batch the agent gave up on, without acknowledging it."""
        with ack_lock:
            self._unacked_messages.discard(batch)  # type: ignore[arg-type]
            notify(self._waiting_for_ack)

    def ack_batch(self, batch: PartitionBatch) -> bool:
        """``Consumer.ack`` for every record of ``batch`` at once: the offsets at or after
        the committed one and not acked yet go to ``_acked``/``_acked_index`` and count in
        ``_n_acked``; the batch stops being in process. True if this ack recorded any."""
        with ack_lock:
            if batch.acked:
                return False
            batch.refcount -= 1
            if batch.refcount > 0:
                return False
            batch.acked = True
            self._unacked_messages.discard(batch)  # type: ignore[arg-type]
            try:
                return self._record_acks(batch)
            finally:
                notify(self._waiting_for_ack)

    def _record_acks(self, batch: PartitionBatch) -> bool:
        tp = batch.tp
        if not self.app.topics.acks_enabled_for(tp.topic):
            return False
        offsets = [record.offset for record in batch.records]
        committed = self._committed_offset[tp]
        if committed is not None and offsets[0] < committed:
            offsets = [offset for offset in offsets if offset >= committed]
        acked_index = self._acked_index[tp]
        if not acked_index.isdisjoint(offsets):
            offsets = [offset for offset in offsets if offset not in acked_index]
        acked_index.update(offsets)
        self._acked[tp].extend(offsets)
        self._n_acked += len(offsets)
        return bool(offsets)


async def _put_unless_cleared(queue: Any, batch: PartitionBatch) -> bool:
    """``await queue.put(batch)``; False if the queue was cleared meanwhile.

    On a rebalance, ``flow_control.clear()`` empties the channel queues, and
    ``ThrowableQueue.clear`` cancels the futures of pending puts. Raised out of ``getmany``,
    that CancelledError makes Faust's Fetcher "restart on rebalance", which fails in
    faust-streaming 0.15.3 (it has no supervisor) and stops the worker. The conductor wraps
    its put in ``asyncio.wait``, which swallows it; this does the same, still letting a
    cancellation of the task itself through.
    """
    try:
        await queue.put(batch)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return False
    return True


class Transport(aiokafka_driver.Transport):
    """Faust's aiokafka transport with :class:`BatchConsumer`: ``kafka+batch://`` URLs."""

    Consumer = BatchConsumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_topics: set[str] = set()


def register() -> None:
    """Make ``kafka+batch://`` broker URLs select :class:`Transport` (Faust's own transport
    registry, which the ``faust.transports`` entry points also fill)."""
    drivers.TRANSPORTS[SCHEME] = f"{__name__}:Transport"
