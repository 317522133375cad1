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

import faust

from arbitration.feeds import read_partition
from domain.news.dedup import NewsDeduplicator
from runtime.intake import INVALID, decode_or_skip, skip
from runtime.metrics import NEWS_WRITTEN
from runtime.settings import Settings
from schemas import DecodeError, decode, encode
from schemas.news import NewsItem
from schemas.topics import TopicRole

log = logging.getLogger("fiml.arbitration.news")

NEWS_ROLES = (TopicRole.NEWS_RAW, TopicRole.NEWS)


@dataclass
class PartitionDedup:
    """The deduplicator of one raw partition and the offset of its next record."""

    dedup: NewsDeduplicator
    next_offset: int


def keyed(key: bytes | None, item: NewsItem) -> str | None:
    """The record's symbol key when the item names it, else None."""
    symbol = key.decode(errors="replace") if key is not None else None
    return symbol if symbol is not None and symbol in item.symbols else None


async def rebuilt(settings: Settings, topic: str, partition: int, end: int) -> PartitionDedup:
    """A deduplicator that took the partition's records before ``end`` (silently: they
    were counted when first read)."""
    dedup = NewsDeduplicator()
    taken = 0
    async for record in read_partition(settings, topic, partition, end):
        try:
            item = decode(record.value, NewsItem)
        except DecodeError:
            continue
        symbol = keyed(record.key, item)
        if symbol is not None:
            dedup.add(symbol, item)
            taken += 1
    log.info("news deduplication of %s-%d rebuilt from %d records", topic, partition, taken)
    return PartitionDedup(dedup, end)


def add_news_agent(
    app: faust.App, settings: Settings, raw: faust.TopicT, news: faust.TopicT
) -> None:
    """Register on ``app`` the agent that deduplicates ``raw`` into ``news`` (the topics of
    ``NEWS_ROLES``, as bytes)."""
    raw_name = settings.topic(TopicRole.NEWS_RAW)
    partitions: dict[int, PartitionDedup] = {}

    @app.agent(raw, name="deduplicate-news")
    async def deduplicate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            held = partitions.get(message.partition)
            if held is None or held.next_offset != message.offset:
                held = await rebuilt(settings, raw_name, message.partition, message.offset)
                partitions[message.partition] = held
            held.next_offset = message.offset + 1
            item = decode_or_skip(message, NewsItem)
            if item is None:
                continue
            symbol = keyed(message.key, item)
            if symbol is None:
                detail = f"key {message.key!r} is not among the item's symbols {item.symbols}"
                skip(message.topic, message.partition, message.offset, INVALID, detail)
                continue
            story = held.dedup.add(symbol, item)
            if story is not None:
                await news.send(key=symbol.encode(), value=encode(story))
                NEWS_WRITTEN.inc()
