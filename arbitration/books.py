"""The order book agent: ``books.raw`` in, consolidated books out to ``books.consolidated``.

The rule is pure (``domain/books/slots.py``: one consolidated book per changed symbol per
``FIML_BOOK_SNAPSHOT_MS`` of Kafka time, fresh venues only). This shell keeps one
:class:`BookSlots` per partition and restores it from the log whenever a record is not the
one it expects next (a start, a rebalance, a retried batch): it replays the partition from
its first retained offset up to that record, discarding the outputs, and reads the marker of
the last record in the same partition of ``books.consolidated``; outputs up to it are not
written again (markers as in ``arbitration/engine/outputs.py``). Outputs go to the partition
of the same number as the input, with the input's Kafka time. A record that is not a
``BookEvent`` is counted, logged and skipped (``runtime/intake.py``) and changes nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import faust
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from arbitration.batch_agent import batch_topic, batches, until_delivered
from arbitration.engine.outputs import Marker, Message, parse_marker
from arbitration.engine.partition import SourceRecord
from arbitration.feeds import last_record, read_partition, source_records
from arbitration.sender import BatchSender, DeliveryFailed, send_each
from domain.books.slots import BookSlots, check_event
from runtime.book_replay import book_slots
from runtime.intake import decode_again, decode_or_skip
from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas import encode
from schemas.books import BookEvent
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration.books")


@dataclass(slots=True)
class _Located:
    topic: str
    partition: int
    offset: int
    value: bytes | None


class BookWorker:
    """Book events of any partition in, messages of consolidated books out."""

    def __init__(self, source: Settings, target: Settings) -> None:
        self.source = source
        self.target = target
        self.topic = source.topic(TopicRole.BOOKS)
        self.slots: dict[int, BookSlots] = {}
        self.written: dict[int, Marker | None] = {}

    def _event(self, partition: int, record: SourceRecord) -> BookEvent | None:
        located = _Located(self.topic, partition, record.offset, record.value)
        return decode_or_skip(located, BookEvent, check_event)

    async def handle(self, partition: int, record: SourceRecord) -> list[Message]:
        """Process the next record of ``partition``; the messages not yet written."""
        state = self.slots.get(partition)
        if state is None or state.next_offset != record.offset:
            state = await self.restore(partition, record.offset)
        books = state.process(record.offset, record.timestamp_us, self._event(partition, record))
        written = self.written.get(partition)
        found = []
        for index, book in enumerate(books):
            marker = (record.offset, index)
            if written is None or marker > written:
                key = book.symbol.encode()
                found.append(Message(TopicRole.CONSOLIDATED_BOOKS, key, encode(book), marker))
        return found

    async def restore(self, partition: int, offset: int) -> BookSlots:
        """The state of ``partition`` after every retained record before ``offset``."""
        state = book_slots(self.source)
        replayed = 0
        async for record in read_partition(self.source, self.topic, partition, offset):
            event = decode_again(record.value, BookEvent, check_event)  # counted when first read
            state.process(record.offset, record.timestamp_us, event)
            replayed += 1
        state.next_offset = offset
        output = TopicPartition(self.target.topic(TopicRole.CONSOLIDATED_BOOKS), partition)
        consumer = make_consumer(self.target, "fiml-books-markers")
        await consumer.start()
        try:
            last = await last_record(consumer, output)
        finally:
            await consumer.stop()
        self.written[partition] = None if last is None else parse_marker(last.headers)
        self.slots[partition] = state
        log.info(
            "books partition %d: state rebuilt from %d records before offset %d; written: %s",
            partition,
            replayed,
            offset,
            self.written[partition],
        )
        return state

    def forget(self) -> None:
        """Drop every partition's state: the next records restore it from the log."""
        self.slots.clear()
        self.written.clear()


def add_book_agent(
    app: faust.App, settings: Settings, producer_of: Callable[[faust.App], AIOKafkaProducer]
) -> None:
    """Register the order book agent (``books``) on the arbitration worker's ``app``; it
    sends through the aiokafka producer ``producer_of(app)`` gives."""
    books = batch_topic(app, settings.topic(TopicRole.BOOKS))
    worker = BookWorker(settings, settings)
    target = settings.topic(TopicRole.CONSOLIDATED_BOOKS)

    @app.agent(books, name="books")
    async def consolidate(stream: faust.StreamT[bytes]) -> None:
        await create_topics(settings, [settings.topics()[TopicRole.CONSOLIDATED_BOOKS]])
        producer = producer_of(app)

        async def deliver(group: dict[int, list[SourceRecord]]) -> None:
            sender = BatchSender(producer)
            for partition, records in group.items():
                for record in records:
                    for message in await worker.handle(partition, record):
                        sender.add(
                            target,
                            partition,
                            message.key,
                            message.value,
                            record.timestamp_us // 1000,
                            message.headers,
                        )
            await sender.send()

        async for group in batches(stream):  # acknowledged when the outputs are
            await until_delivered(
                functools.partial(deliver, source_records(group)),
                worker.forget,
                "consolidated books",
                log,
                (DeliveryFailed, KafkaError),
            )


async def rebuild_books(source: Settings, target: Settings) -> tuple[dict[int, int], int]:
    """Replay ``books.raw`` of ``source`` into ``books.consolidated`` of ``target``: the
    end offsets read up to, per partition, and the number of books written."""
    await create_topics(target, [target.topics()[TopicRole.CONSOLIDATED_BOOKS]])
    topic = source.topic(TopicRole.BOOKS)
    partitions = await topic_partitions(source, topic)
    consumer = make_consumer(source, "fiml-rebuild")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    worker = BookWorker(source, target)
    producer = make_producer(target, "fiml-rebuild-books")
    written = 0
    await producer.start()
    try:
        for tp in partitions:
            deliveries = []
            async for record in read_partition(source, topic, tp.partition, ends[tp]):
                messages = await worker.handle(tp.partition, record)
                written += len(messages)
                sent = send_each(producer, target, tp.partition, record.timestamp_us, messages)
                deliveries.extend(await sent)
            await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return {tp.partition: ends[tp] for tp in partitions}, written
