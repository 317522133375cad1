"""Every consumer of the topics of books, news and alerts fed every kind of bad record.

tests/test_poison.py runs the whole system on the market topics. Here each topic of
``RECORD_TOPICS`` past those (and the alerts' checkpoints) gets, in one partition, good
records with every kind of poison between them (schemas/codec.py ``REASONS``, a record that
decodes but makes no sense, keys a consumer cannot parse). Then each of its consumers, the
real class on the real broker, reads it twice, the second time as after a restart with the
poison still there: the good records must come out each time, every poison record counted
in ``fiml_records_skipped_total`` with its reason (once: a consumer that rebuilds its state
from the log does not count again what it skipped before), and nothing may stop it.
A topic without a row in ``CONSUMERS`` (or ``NO_READER``) fails the coverage test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from arbitration.alert_checkpoints import (
    MAX_CHECKPOINT_BYTES,
    MAX_STATE_BYTES,
    Checkpoint,
    CheckpointStore,
)
from arbitration.alert_checkpoints import encode as encode_checkpoint
from arbitration.books import BookWorker
from arbitration.engine.partition import SourceRecord
from arbitration.feeds import read_partition
from arbitration.news import NewsWorker
from arbitration.webhook_worker import WebhookWorker
from arbitration.webhooks import RateLimiter, RetryPolicy, WebhookSender
from domain.alerts.delivery import alert_document
from domain.books.protocol import check_consolidated
from gateway.alerts import AlertBook
from gateway.feed import MarketFeed
from gateway.providers import ProviderStatuses
from gateway.stores import MarketStores
from runtime.alert_rules import RuleFeed
from runtime.book_replay import BookReplay
from runtime.clock import now_micros
from runtime.metrics import RECORDS_SKIPPED
from runtime.partitioning import key_partition
from runtime.replay import Replay
from runtime.replay_request import ReplayRequest
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from schemas import decode, encode
from schemas.alerts import AlertRule, FiredAlert
from schemas.books import SNAPSHOT, BookEvent, ConsolidatedBook
from schemas.codec import NULL, REASONS, Record
from schemas.news import NewsItem
from schemas.times import LAST_MICROS
from schemas.topics import RECORD_TOPICS, TopicRole
from tests.factories import BASE_US, trade
from tests.support import poll_until
from tests.support_alerts import rule
from tests.support_kafka import Entry, produce, settings_on
from tests.support_news import raw
from tests.support_poison import poison_values, reason_of
from tests.support_webhooks import Receiver, serving_receiver

INVALID = "invalid"
WITHIN = 20.0  # seconds a consumer has to read a topic of a few records
NOW_US = now_micros()
NEWS_SYMBOL = "PZN"
PARTITION = key_partition(NEWS_SYMBOL.encode(), 3)  # of the 3 of tests/support_kafka.py
# Book symbols of that partition (a replay of symbols reads the partitions of their keys).
BOOK_SYMBOLS = [
    symbol
    for symbol in (f"PZ{letter}/USDT" for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if key_partition(symbol.encode(), 3) == PARTITION
][:3]
PZA, PZB, PZC = BOOK_SYMBOLS
RECEIVER_PORT = free_port()
# Keys a consumer that reads the symbol from the key cannot use: none, not UTF-8, another.
BAD_KEYS: tuple[bytes | None, ...] = (None, b"\xff\xfe", b"OTHER")


def book(symbol: str, at_us: int) -> BookEvent:
    return BookEvent(symbol, "test:a", SNAPSHOT, at_us, at_us, [["100", "1"]], [["101", "1"]])


def consolidated(symbol: str) -> ConsolidatedBook:
    return ConsolidatedBook(symbol, NOW_US, 1, ["test:a"], [["100", "1"]], [["101", "1"]])


def story(n: int) -> NewsItem:
    headline = ("Poison proof quarterly results", "Unrelated merger rumour denied")[n % 2]
    return raw("test:a", f"{headline} {n}", f"https://example.com/p{n}", BASE_US + n, [NEWS_SYMBOL])


def alert_rule(n: int) -> AlertRule:
    return rule("price_above", rule_id=f"rule-{n}", symbols=("AAPL",), level=100.0 + n)


def fired(n: int) -> FiredAlert:
    url = f"http://127.0.0.1:{RECEIVER_PORT}/ok"
    return FiredAlert(
        f"alert-{n}", "rule-0", "anonymous", "price_above", "AAPL", NOW_US, {"price": 101.0},
        "AAPL above 100", "quotes", 0, n, url,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Layout:
    """What one partition of a topic holds: good records with poison between them."""

    goods: list[Record]
    poison: list[bytes | None]  # values, written under the first good's key (or this one)
    key_of: Callable[[Any], bytes]
    poison_key: bytes | None = None
    # records of good values under ``BAD_KEYS``, for the consumers that parse keys
    badly_keyed: list[Record] = dataclasses.field(default_factory=list)
    trailer: Record | None = None  # a good record after the rest (to flush a slot)
    spaced_ms: int = 0  # Kafka times this far apart, from ``NOW_US`` on

    def entries(self, partition: int) -> list[Entry]:
        """The records, in order: first good, poison, badly keyed, the other goods, trailer."""
        first, *rest = self.goods
        key = self.poison_key or self.key_of(first)
        values: list[tuple[bytes | None, Any]] = [
            (self.key_of(first), first),
            *((key, value) for value in self.poison),
            *(zip(BAD_KEYS, self.badly_keyed, strict=True) if self.badly_keyed else ()),
            *((self.key_of(good), good) for good in rest),
        ]
        if self.trailer is not None:
            values.append((self.key_of(self.trailer), self.trailer))
        return [
            Entry(
                value if value is None or isinstance(value, bytes) else encode(value),
                key=key,
                partition=partition,
                written_ms=NOW_US // 1000 + n * self.spaced_ms if self.spaced_ms else None,
            )
            for n, (key, value) in enumerate(values)
        ]


POISON_KINDS = len(poison_values(trade(), trade()))


def poison_of(good: Record, other: Record, *senseless: Record) -> list[bytes | None]:
    """The poison of a topic of ``good``'s type: every undecodable kind, then records that
    decode but make no sense (to its consumers that check them)."""
    return [*poison_values(good, other), *map(encode, senseless)]


OTHER = trade()  # a record of another type, for the ``wrong_type`` poison
CHECKPOINT = Checkpoint(next={"quotes": 7}, fired_next=0)
LAYOUTS: dict[TopicRole, Layout] = {
    TopicRole.BOOKS: Layout(
        [book(PZA, NOW_US), book(PZB, NOW_US)],
        poison_of(book(PZA, NOW_US), OTHER, book(PZB, LAST_MICROS + 1)),
        lambda event: event.symbol.encode(),
        trailer=book(PZC, NOW_US),
        spaced_ms=300,  # a slot of its own for each record (FIML_BOOK_SNAPSHOT_MS 250)
    ),
    TopicRole.CONSOLIDATED_BOOKS: Layout(
        [consolidated(PZA), consolidated(PZB)],
        poison_of(
            consolidated(PZA),
            OTHER,
            dataclasses.replace(consolidated(PZC), ts_event=LAST_MICROS + 1),
            dataclasses.replace(consolidated(PZC), bids=[["100"]]),
            dataclasses.replace(consolidated(PZC), asks=[["1O1", "1"]]),
            dataclasses.replace(consolidated(PZC), crossed_bids=[3]),
        ),
        lambda book: book.symbol.encode(),
    ),
    TopicRole.NEWS_RAW: Layout(
        [story(0), story(1)],
        poison_of(story(0), OTHER, dataclasses.replace(story(8), ts_ingest=LAST_MICROS + 1)),
        lambda _: NEWS_SYMBOL.encode(),
        badly_keyed=[story(2), story(4), story(6)],
    ),
    TopicRole.NEWS: Layout(
        [story(0), story(1)],
        poison_of(
            story(0),
            OTHER,
            dataclasses.replace(story(8), published_us=LAST_MICROS + 1),
        ),
        lambda _: NEWS_SYMBOL.encode(),
        badly_keyed=[story(2), story(4), story(6)],
    ),
    TopicRole.ALERT_RULES: Layout(
        [alert_rule(0), alert_rule(1)],
        poison_of(alert_rule(0), OTHER, dataclasses.replace(alert_rule(9), cooldown_us=-1)),
        lambda r: r.rule_id.encode(),
        poison_key=b"rule-9",  # a tombstone of no rule
    ),
    TopicRole.ALERTS_FIRED: Layout(
        [fired(0), fired(1)],
        poison_of(fired(0), OTHER, dataclasses.replace(fired(5), ts_event=LAST_MICROS + 1)),
        lambda alert: alert.alert_id.encode(),
        badly_keyed=[fired(2), fired(3), fired(4)],
    ),
}
CHECKPOINT_POISON: list[bytes | None] = [
    None,  # a tombstone: no checkpoint, not poison
    b"",
    b"garbage",
    b"\0" * (MAX_CHECKPOINT_BYTES + 1),
    zlib.compress(b"\0" * (MAX_STATE_BYTES + 1), 9),  # inflates past the limit
    encode_checkpoint(CHECKPOINT)[:-3],
    zlib.compress(orjson.dumps({"snapshot": 1, "next": {}, "fired_next": 0})),
    zlib.compress(orjson.dumps([1, 2])),
]


def expected_reasons(layout: Layout, record_type: type, keys: bool) -> Counter[str]:
    """How many of a layout's records a consumer skips per reason (``keys``: it reads the
    symbol from the key, so each badly keyed record is ``invalid``)."""
    reasons = Counter(
        reason_of(value, record_type) if n < POISON_KINDS else INVALID
        for n, value in enumerate(layout.poison)
    )
    if keys:
        reasons[INVALID] += len(layout.badly_keyed)
    return reasons


@dataclasses.dataclass
class System:
    """The settings of the module's topics, the partition and offsets of each topic's
    records, and the webhook receiver their alerts name."""

    settings: Settings
    partition: int
    offsets: dict[TopicRole, list[int]]
    receiver: Receiver

    def topic(self, role: TopicRole) -> str:
        return self.settings.topic(role)


@pytest.fixture(scope="module")
async def system(kafka_bootstrap: str) -> AsyncIterator[System]:
    """Topics of the module's own with every layout written to one partition."""
    settings = dataclasses.replace(settings_on(kafka_bootstrap), consumer_stall_seconds=60)
    await create_topics(settings)
    assert settings.partitions == 3
    partition = PARTITION
    offsets = {}
    async with serving_receiver(RECEIVER_PORT) as (receiver, _):
        for role, layout in LAYOUTS.items():
            written = await produce(settings, role, layout.entries(partition))
            offsets[role] = [meta.offset for meta in written]
        states = [
            Entry(value, key=str(partition).encode(), partition=partition)
            for value in [*CHECKPOINT_POISON, encode_checkpoint(CHECKPOINT)]
        ]
        written = await produce(settings, TopicRole.ALERTS_STATE, states)
        offsets[TopicRole.ALERTS_STATE] = [meta.offset for meta in written]
        yield System(settings, partition, offsets, receiver)


def skipped(topic: str) -> Counter[str]:
    """The records skipped so far in this process on ``topic``, per reason."""
    counts: Counter[str] = Counter()
    for metric in RECORDS_SKIPPED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels["topic"] == topic:
                counts[sample.labels["reason"]] += int(sample.value)
    return counts


@contextlib.asynccontextmanager
async def running(coroutine: Coroutine[Any, Any, Any]) -> AsyncIterator[asyncio.Task[Any]]:
    """``coroutine`` as a task while the block runs; it must not have failed."""
    task = asyncio.create_task(coroutine)
    try:
        yield task
        assert not task.done(), task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ---- each consumer: read the topic as a new instance would; what it delivered ----


async def books_agent(system: System, restart: bool) -> set[str]:
    """The books agent (arbitration/books.py): the symbols of the books it writes."""
    target = dataclasses.replace(system.settings, topic_prefix=f"{system.settings.topic_prefix}-o")
    await create_topics(target, [target.topics()[TopicRole.CONSOLIDATED_BOOKS]])
    worker = BookWorker(system.settings, target)
    offsets = system.offsets[TopicRole.BOOKS]
    start = offsets[-2] if restart else 0  # a restart resumes at the last good book
    symbols = set()
    async for record in read_partition(
        system.settings, system.topic(TopicRole.BOOKS), system.partition, offsets[-1] + 1, start
    ):
        for message in await worker.handle(system.partition, record):
            written = decode(message.value, ConsolidatedBook)
            check_consolidated(written)  # a book the gateway can show
            symbols.add(written.symbol)
    return symbols


async def news_agent(system: System, restart: bool) -> set[str]:
    """The news agent (arbitration/news.py): the headlines of the stories it writes."""
    worker = NewsWorker(system.settings)
    offsets = system.offsets[TopicRole.NEWS_RAW]
    start = offsets[-1] if restart else 0
    topic = system.topic(TopicRole.NEWS_RAW)
    headlines = set()
    async for record in read_partition(
        system.settings, topic, system.partition, offsets[-1] + 1, start
    ):
        taken = await worker.handle(_Message(topic, system.partition, record))
        if taken is not None:
            headlines.add(taken[1].headline)
    return headlines


@dataclasses.dataclass
class _Message:
    """A record as Faust hands it to an agent (topic, partition, offset, key, value)."""

    topic: str
    partition: int
    record: SourceRecord

    @property
    def offset(self) -> int:
        return self.record.offset

    @property
    def key(self) -> bytes | None:
        return self.record.key

    @property
    def value(self) -> bytes | None:
        return self.record.value


async def gateway_feed(system: System, role: TopicRole) -> MarketStores:
    """The gateway's market feed (gateway/feed.py) once it read every record of ``role``."""
    market = MarketStores()
    feed = MarketFeed(system.settings, market, ProviderStatuses())
    tp = TopicPartition(system.topic(role), system.partition)

    async def read_through() -> bool:
        consumer = feed.consumer
        return (
            feed.ready.is_set()
            and consumer is not None
            and await consumer.position(tp) > system.offsets[role][-1]
        )

    async with running(feed.run()):
        await poll_until(read_through, within=WITHIN, interval=0.05)
    return market


async def gateway_books(system: System, restart: bool) -> set[str]:
    """The gateway's book store: the symbols of its books."""
    return set((await gateway_feed(system, TopicRole.CONSOLIDATED_BOOKS)).books.books)


async def gateway_news(system: System, restart: bool) -> set[str]:
    """The gateway's news store, as ``GET /v1/news`` pages it: the headlines."""
    market = await gateway_feed(system, TopicRole.NEWS)
    entries, _ = market.news.page([NEWS_SYMBOL], 0, LAST_MICROS, 100, None)
    return {str(entry["headline"]) for entry in entries}


async def news_replay(system: System, restart: bool) -> set[str]:
    """The replay reader of WebSocket replay, REST history and ``fiml replay`` (runtime/
    replay.py) on the news stream: the headlines it yields."""
    request = ReplayRequest("news", (NEWS_SYMBOL,), 0, now_micros())
    async with Replay(system.settings, request) as replay:
        return {item.record.headline async for item in replay.records()}


async def book_replay(system: System, restart: bool) -> set[str]:
    """The replay of consolidated books from ``books.raw`` (runtime/book_replay.py)."""
    request = ReplayRequest("books", (PZA, PZB, PZC), 0, now_micros())
    async with BookReplay(system.settings, request) as replay:
        books = [item.record async for item in replay.records()]
    for made in books:
        check_consolidated(made)
    return {made.symbol for made in books}


async def rule_feed(system: System, restart: bool) -> set[str]:
    """The rule feed of the alerts agent and of the gateway (runtime/alert_rules.py)."""
    feed = RuleFeed(system.settings)
    async with running(feed.run()):
        await asyncio.wait_for(feed.ready.wait(), WITHIN)
    return set(feed.rules)


async def webhook_worker(system: System, restart: bool) -> set[str]:
    """The webhook worker (arbitration/webhook_worker.py): the alerts it delivered; after a
    restart, none again (its group committed past the poison)."""
    sender = WebhookSender(b"secret", RetryPolicy(attempts=1), RateLimiter(1000.0, 1000.0))
    worker = WebhookWorker(system.settings, sender)
    before = len(system.receiver.received)
    async with running(worker.run()):
        await poll_until(lambda: worker.ready(), within=WITHIN, interval=0.05)
        ends = system.offsets[TopicRole.ALERTS_FIRED][-1] + 1

        async def committed() -> bool:
            assert worker.consumer is not None
            tp = next(tp for tp in worker.consumer.assignment() if tp.partition == system.partition)
            return (await worker.consumer.committed(tp) or 0) >= ends

        await poll_until(committed, within=WITHIN, interval=0.1)
    await sender.close()
    return {orjson.loads(body)["alert_id"] for _, _, body in system.receiver.received[before:]}


async def gateway_alerts(system: System, restart: bool) -> set[str]:
    """The gateway's alert stream (gateway/alerts.py), which follows ``alerts.fired`` from
    its end: the layout is written again once it follows. Its listeners make the alerts'
    documents, as a WebSocket session does."""
    book_ = AlertBook(system.settings)
    got: set[str] = set()
    book_.listen("anonymous", lambda alert: got.add(str(alert_document(alert)["alert_id"])))
    async with running(book_.run()):
        await asyncio.wait_for(book_.following.wait(), WITHIN)
        layout = LAYOUTS[TopicRole.ALERTS_FIRED]
        await produce(system.settings, TopicRole.ALERTS_FIRED, layout.entries(system.partition))
        await poll_until(lambda: len(got) >= 5, within=WITHIN, interval=0.05)
    return got


async def checkpoints(system: System, restart: bool) -> set[str]:
    """The alerts agent's checkpoint loader (arbitration/alert_checkpoints.py) on
    ``alerts.state``: which checkpoint it found."""
    checkpoint, _ = await CheckpointStore(system.settings).load(system.partition)
    return {orjson.dumps(checkpoint.next).decode()}


async def fired_ids(system: System, restart: bool) -> set[str]:
    """The checkpoint loader on ``alerts.fired``: the ids of the alerts written since."""
    _, written = await CheckpointStore(system.settings).load(system.partition)
    return written


@dataclasses.dataclass(frozen=True)
class Consumer:
    """A consumer of a topic: how to run it, and what it delivers and skips."""

    name: str
    role: TopicRole
    read: Callable[[System, bool], Awaitable[set[str]]]
    delivered: set[str]
    skips: Counter[str]
    # after a restart: what it delivers again and skips again (None: the same)
    delivered_again: set[str] | None = None
    skips_again: Counter[str] | None = None


def reasons(role: TopicRole, record_type: type, keys: bool = False) -> Counter[str]:
    return expected_reasons(LAYOUTS[role], record_type, keys)


FIRED = {f"alert-{n}" for n in range(5)}  # their readers take no key
CONSUMERS = [
    Consumer(
        "books agent", TopicRole.BOOKS, books_agent, {PZA, PZB},
        reasons(TopicRole.BOOKS, BookEvent), {PZB}, Counter(),
    ),
    Consumer(
        "book replay", TopicRole.BOOKS, book_replay, {PZA, PZB},  # as the agent wrote
        reasons(TopicRole.BOOKS, BookEvent),
    ),
    Consumer(
        "gateway book feed", TopicRole.CONSOLIDATED_BOOKS, gateway_books,
        {PZA, PZB}, reasons(TopicRole.CONSOLIDATED_BOOKS, ConsolidatedBook),
    ),
    Consumer(
        "news agent", TopicRole.NEWS_RAW, news_agent, {story(0).headline, story(1).headline},
        reasons(TopicRole.NEWS_RAW, NewsItem, keys=True), {story(1).headline}, Counter(),
    ),
    Consumer(
        "gateway news feed", TopicRole.NEWS, gateway_news,
        {story(0).headline, story(1).headline}, reasons(TopicRole.NEWS, NewsItem, keys=True),
    ),
    Consumer(
        "news replay", TopicRole.NEWS, news_replay, {story(0).headline, story(1).headline},
        # the story of no date is in no range, so not counted; of the bad keys only the
        # missing one is no symbol's (invalid): the others are keys of other symbols
        reasons(TopicRole.NEWS, NewsItem),
    ),
    Consumer(
        "rule feed", TopicRole.ALERT_RULES, rule_feed, {"rule-0", "rule-1"},
        reasons(TopicRole.ALERT_RULES, AlertRule) - Counter({NULL: 1}),  # a tombstone
    ),
    Consumer(
        "webhook worker", TopicRole.ALERTS_FIRED, webhook_worker, FIRED,
        reasons(TopicRole.ALERTS_FIRED, FiredAlert), set(), Counter(),
    ),
    Consumer(
        "alert checkpoints", TopicRole.ALERTS_STATE, checkpoints,
        {orjson.dumps(CHECKPOINT.next).decode()}, Counter({"corrupt": len(CHECKPOINT_POISON) - 1}),
    ),
    Consumer(
        "alert checkpoints, fired ids", TopicRole.ALERTS_FIRED, fired_ids,
        {"alert-0", "alert-1", "OTHER"}, Counter({INVALID: 2}),  # by key, not by value
    ),
    Consumer(
        "gateway alert stream", TopicRole.ALERTS_FIRED, gateway_alerts,
        FIRED,
        reasons(TopicRole.ALERTS_FIRED, FiredAlert),
    ),
]  # fmt: skip
# Topics no service reads (an operator's, with their own tools), and those of
# tests/test_poison.py.
NO_READER = {TopicRole.WEBHOOK_DLQ, TopicRole.DLQ}
MARKET = {
    TopicRole.RAW,
    TopicRole.STATUS,
    TopicRole.QUOTES,
    TopicRole.CANDLES,
    TopicRole.TRADES,
    TopicRole.DEMAND,
    TopicRole.STATE,
}


def test_every_topic_has_its_consumers_fed_every_kind_of_poison():
    read = {consumer.role for consumer in CONSUMERS}
    roles = {*RECORD_TOPICS.values(), *TopicRole}
    assert roles - MARKET - NO_READER == read, "a topic without poison cases"
    assert set(LAYOUTS) == read - {TopicRole.ALERTS_STATE}
    types = {role: record_type for record_type, role in RECORD_TOPICS.items()}
    types[TopicRole.NEWS_RAW] = NewsItem
    for role, layout in LAYOUTS.items():
        kinds = {reason_of(value, types[role]) for value in layout.poison[:POISON_KINDS]}
        assert kinds == set(REASONS), role
        assert len(layout.poison) > POISON_KINDS, f"{role}: no record that makes no sense"


@pytest.mark.parametrize("consumer", CONSUMERS, ids=lambda c: c.name)
async def test_a_consumer_skips_and_counts_every_bad_record(system, consumer):
    topic = system.topic(consumer.role)
    for restart in (False, True):
        before = skipped(topic)
        delivered = await asyncio.wait_for(consumer.read(system, restart), 3 * WITHIN)
        counted = skipped(topic) - before
        again = restart and consumer.delivered_again is not None
        assert delivered == (consumer.delivered_again if again else consumer.delivered), restart
        skips = consumer.skips_again if restart and consumer.skips_again is not None else None
        assert counted == (consumer.skips if skips is None else skips), restart
