"""Rebuild: replay ``ticks.raw`` and ``provider.status`` through the same engine into topics
with another prefix, and ``books.raw`` through the book agent's rule into its consolidated
books, and optionally compare them with the live topics record by record.

The rebuild uses the :class:`Arbiter` of the worker, so outputs carry the same markers:
running it again on the same prefix writes only what is missing. Verification compares, per
output topic and partition, the live records whose raw offset the rebuild covered with the
rebuilt ones, in order, by key, value and marker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from arbitration.arbiter import Arbiter
from arbitration.books import rebuild_books
from arbitration.configure import engine_config
from arbitration.engine.outputs import Marker, parse_marker
from arbitration.engine.partition import ROLES
from arbitration.feeds import StatusFeed, read_partition
from arbitration.sender import send_each
from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas.topics import TopicRole

Stored = tuple[bytes | None, bytes, Marker | None]


@dataclass
class Comparison:
    """How one output topic of the rebuild compares with the live one."""

    matched: int = 0
    mismatched: int = 0
    live_only: int = 0
    rebuilt_only: int = 0

    @property
    def ok(self) -> bool:
        """Whether every record matched."""
        return self.mismatched == self.live_only == self.rebuilt_only == 0


@dataclass
class RebuildReport:
    """What a rebuild read and wrote, and the comparison if one was asked for."""

    prefix: str
    raw_ends: dict[int, int]
    records: int = 0
    written: Counter[TopicRole] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    comparison: dict[TopicRole, Comparison] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the comparison, if any, found no difference."""
        return self.comparison is None or all(c.ok for c in self.comparison.values())

    def summary(self) -> str:
        """A few lines for people."""
        lines = [
            f"rebuilt {self.records} raw records into {self.prefix}.*: "
            + ", ".join(f"{role} {n}" for role, n in sorted(self.written.items())),
            "rejections: "
            + (
                ", ".join(f"{reason} {n}" for reason, n in sorted(self.rejections.items()))
                or "none"
            ),
            f"took {self.seconds:.1f} s",
        ]
        for role, c in sorted((self.comparison or {}).items()):
            lines.append(
                f"verify {role}: {c.matched} matched, {c.mismatched} mismatched, "
                f"{c.live_only} only live, {c.rebuilt_only} only rebuilt"
            )
        if self.comparison is not None:
            lines.append("verify: OK" if self.ok else "verify: DIFFERENT")
        return "\n".join(lines)


async def rebuild(
    settings: Settings,
    prefix: str,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Replay the live raw and status topics of ``settings`` into topics named ``prefix.*``.

    ``progress(done, total)`` is called after each raw record, ``total`` being the raw end
    offsets summed.
    """
    began = time.monotonic()
    if prefix == settings.topic_prefix:
        raise ValueError(f"the rebuild prefix must differ from the live one ({prefix!r})")
    target = dataclasses.replace(settings, topic_prefix=prefix)
    await create_topics(target, [target.topics()[role] for role in ROLES.values()])
    raw_topic = settings.topic(TopicRole.RAW)
    partitions = await topic_partitions(settings, raw_topic)
    ends = await _end_offsets(settings, partitions)
    report = RebuildReport(prefix, {tp.partition: ends[tp] for tp in partitions})
    total = sum(report.raw_ends.values())
    feed = StatusFeed(settings, engine_config(settings))
    arbiter = Arbiter(settings, target, feed)
    producer = make_producer(target, "fiml-rebuild")
    await feed.start()
    await producer.start()
    try:
        for tp in partitions:
            deliveries = []
            async for record in read_partition(settings, raw_topic, tp.partition, ends[tp]):
                report.records += 1
                if progress is not None:
                    progress(report.records, total)
                messages = await arbiter.handle(tp.partition, record)
                report.written.update(message.role for message in messages)
                sent = send_each(producer, target, tp.partition, record.timestamp_us, messages)
                deliveries.extend(await sent)
            await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
        await feed.stop()
    for engine in arbiter.engines.values():
        report.rejections.update(engine.rejections)
    books = TopicRole.CONSOLIDATED_BOOKS
    book_ends, report.written[books] = await rebuild_books(settings, target)
    if verify:
        report.comparison = await compare(settings, target, report.raw_ends)
        report.comparison.update(await compare(settings, target, book_ends, [books]))
    report.seconds = time.monotonic() - began
    return report


async def compare(
    live: Settings,
    rebuilt: Settings,
    raw_ends: dict[int, int],
    roles: Iterable[TopicRole] = ROLES.values(),
) -> dict[TopicRole, Comparison]:
    """Compare the output topics (``roles``) of ``rebuilt`` with those of ``live`` up to the
    input offsets ``raw_ends``."""
    result = {}
    for role in roles:
        comparison = result[role] = Comparison()
        for partition, end in sorted(raw_ends.items()):
            ours = [r for r in await read_stored(live, role, partition) if _before(r, end)]
            theirs = [r for r in await read_stored(rebuilt, role, partition) if _before(r, end)]
            for a, b in zip(ours, theirs, strict=False):
                if a == b:
                    comparison.matched += 1
                else:
                    comparison.mismatched += 1
            comparison.live_only += max(0, len(ours) - len(theirs))
            comparison.rebuilt_only += max(0, len(theirs) - len(ours))
    return result


async def read_stored(settings: Settings, role: TopicRole, partition: int) -> list[Stored]:
    """Key, value and marker of every record in one partition of an output topic."""
    tp = TopicPartition(settings.topic(role), partition)
    consumer = make_consumer(settings, "fiml-rebuild-verify")
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        stored: list[Stored] = []
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
            stored.extend(
                (r.key, r.value, parse_marker(r.headers))
                for r in batches.get(tp, [])
                if r.offset < end
            )
        return stored
    finally:
        await consumer.stop()


def _before(record: Stored, end: int) -> bool:
    marker = record[2]
    return marker is None or marker[0] < end


async def _end_offsets(
    settings: Settings, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    consumer = make_consumer(settings, "fiml-rebuild")
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
