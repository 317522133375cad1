"""The agent's side of batch delivery: a topic delivered a partition batch at a time, and
the batches of its stream, each acknowledged when the agent's loop body returns."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import ChannelT

from arbitration.batch_delivery import SCHEME, BatchConsumer, Transport
from arbitration.partition_batch import PartitionBatch
from runtime.backoff import NETWORK

# Partition batches (up to MAX_POLL_RECORDS records each, arbitration/faust_worker.py) queued
# for an agent; a full queue blocks the fetch loop of every agent of the worker.
QUEUED_BATCHES = 4


def batch_topic(app: faust.App, *names: str, maxsize: int = QUEUED_BATCHES) -> faust.TopicT:
    """``names`` as one topic whose records the consumer delivers a partition batch at a
    time; ``maxsize`` counts batches in the agent's queue. Key and value types do not apply:
    a batch carries the records as fetched (bytes, Kafka time in ms)."""
    transport = app.transport
    if not isinstance(transport, Transport):
        raise TypeError(f"batch delivery needs a {SCHEME}:// broker URL")
    transport.batch_topics.update(names)
    # Not app.topic(): faust-streaming 0.15.3 takes maxsize there and drops it (the queue
    # would hold stream_buffer_maxsize, 4096, batches: the whole backlog).
    make_topic: Any = app.conf.Topic
    topic: faust.TopicT = make_topic(
        app,
        topics=list(names),
        maxsize=maxsize,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    return topic


class AbandonedBatch(RuntimeError):
    """The agent left a batch unfinished (its loop body raised or broke out)."""


async def batches(stream: faust.StreamT[Any]) -> AsyncIterator[list[PartitionBatch]]:
    """The batches of an agent's stream over a :func:`batch_topic`, each step the next one
    with every batch already queued behind it (at most the queue's ``maxsize``), all
    acknowledged when the loop body returns; a stale batch (flow suspended, generation
    changed) is skipped. An agent that waits for the broker on each step (its outputs
    acknowledged) so waits once for what a poll brought, not once per partition.

    Batches the body does not finish are never acknowledged and, unless the worker is
    stopping, crash it: the partition's later batches would otherwise be acknowledged past
    the hole (Faust commits past a leading hole before a partition's first commit) or hold
    its commits back for good. A restarted worker resumes from the last commit. So the agent
    must run with concurrency 1.
    """
    app = stream.app
    consumer = app.consumer
    if not isinstance(consumer, BatchConsumer):
        raise TypeError(f"batches() needs the {SCHEME} transport")
    channel: ChannelT[Any] = stream.channel  # type: ignore[assignment]
    queue = channel.queue  # what the stream reads: its values are these batches
    async for first in stream:
        taken = [first]
        while not queue.empty():
            taken.append(queue.get_nowait())
        group = [batch for batch in taken if consumer.admit(batch)]
        if not group:
            continue
        try:
            yield group
        except GeneratorExit:
            for batch in group:
                consumer.release(batch)
            if not app.should_stop:
                await app.crash(AbandonedBatch(repr(group)))
            raise
        for batch in group:
            consumer.ack_batch(batch)


async def until_delivered(
    attempt_batch: Callable[[], Awaitable[None]],
    forget: Callable[[], None],
    what: str,
    log: logging.Logger,
    errors: tuple[type[Exception], ...] = (KafkaError,),
) -> None:
    """Run ``attempt_batch()`` until it returns; after one of ``errors`` (the broker away)
    ``forget()`` the state it built, to be rebuilt from the log, and try again with backoff."""
    attempt = 0
    while True:
        try:
            await attempt_batch()
            return
        except errors as error:
            delay = NETWORK.delay(attempt, random.Random())
            attempt += 1
            log.warning("%s not delivered (%s); retrying", what, error)
            forget()
            await asyncio.sleep(delay)
