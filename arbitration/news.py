"""The news agent: deduplicates ``news.raw`` into ``news``, deterministic from the log.

Each raw record is one provider's copy of a story under one of its symbols (the key). The
agent keeps a :class:`~domain.news.dedup.NewsDeduplicator` per partition of the raw topic
and writes what it returns to ``news`` under the same key. A deduplicator's state is a
function of its partition's records so far: when a partition's next record is not the
one after the last it took (the worker started, or the partition came in a rebalance), the
agent first reads the partition from its first retained record up to that one into a new
deduplicator, writing nothing. So the item written for a record is the same whenever and
however often it is computed; one written again after a crash is the same item, which
readers take as an update of the same id.

A record that does not decode, or whose key is not among its symbols, is counted and
skipped (``runtime/intake.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import faust

from arbitration.feeds import read_partition
from domain.news.dedup import NewsDeduplicator, check_item
from runtime.intake import INVALID, decode_again, decode_or_skip, skip
from runtime.metrics import NEWS_WRITTEN
from runtime.settings import Settings
from schemas import encode
from schemas.news import NewsItem, story_symbol
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration.news")

NEWS_ROLES = (TopicRole.NEWS_RAW, TopicRole.NEWS)


class Message(Protocol):
    """A raw record as Faust hands it to the agent."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class PartitionDedup:
    """The deduplicator of one raw partition and the offset of its next record."""

    dedup: NewsDeduplicator
    next_offset: int


async def rebuilt(settings: Settings, topic: str, partition: int, end: int) -> PartitionDedup:
    """A deduplicator that took the partition's records before ``end`` (silently: they
    were counted when first read)."""
    dedup = NewsDeduplicator()
    taken = 0
    async for record in read_partition(settings, topic, partition, end):
        item = decode_again(record.value, NewsItem, check_item)
        if item is None:
            continue
        symbol = story_symbol(record.key, item)
        if symbol is not None:
            dedup.add(symbol, item)
            taken += 1
    log.info("news deduplication of %s-%d rebuilt from %d records", topic, partition, taken)
    return PartitionDedup(dedup, end)


class NewsWorker:
    """The deduplicators of the raw partitions: each record in, the story to write out."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.raw_topic = settings.topic(TopicRole.NEWS_RAW)
        self.partitions: dict[int, PartitionDedup] = {}

    async def handle(self, message: Message) -> tuple[str, NewsItem] | None:
        """The symbol and story to write for the next record of its partition, if any."""
        held = self.partitions.get(message.partition)
        if held is None or held.next_offset != message.offset:
            held = await rebuilt(self.settings, self.raw_topic, message.partition, message.offset)
            self.partitions[message.partition] = held
        held.next_offset = message.offset + 1
        item = decode_or_skip(message, NewsItem, check_item)
        if item is None:
            return None
        symbol = story_symbol(message.key, item)
        if symbol is None:
            detail = f"key {message.key!r} is not among the item's symbols {item.symbols}"
            skip(message.topic, message.partition, message.offset, INVALID, detail)
            return None
        story = held.dedup.add(symbol, item)
        return None if story is None else (symbol, story)


def add_news_agent(
    app: faust.App, settings: Settings, raw: faust.TopicT, news: faust.TopicT
) -> None:
    """Register on ``app`` the agent that deduplicates ``raw`` into ``news`` (the topics of
    ``NEWS_ROLES``, as bytes)."""
    worker = NewsWorker(settings)

    @app.agent(raw, name="deduplicate-news")
    async def deduplicate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            taken = await worker.handle(event.message)
            if taken is not None:
                symbol, story = taken
                await news.send(key=symbol.encode(), value=encode(story))
                NEWS_WRITTEN.inc()
