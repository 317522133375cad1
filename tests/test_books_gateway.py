"""The gateway's orderbook stream without a broker: validation, the book store, and a client
that rebuilds every book it is sent, consolidated or of one venue, whatever the conflation."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.books.consolidated import SymbolBooks
from domain.books.protocol import ClientBook
from gateway import frames
from gateway.books import BookStore, replayed_items
from gateway.protocol import ErrorCode, ProtocolError, StreamType, parse_client_message
from gateway.subscription import Subscription
from ingest.books.synthetic_books import SyntheticBooks
from ingest.synthetic import SyntheticMarket

SECOND = 1_000_000
START = 1_700_000_000 * SECOND
SYMBOL = "BTC/USDT"


@functools.cache
def consolidated_books(steps: int = 40) -> tuple:
    """The consolidated books of BTC/USDT after each step of three synthetic venues."""
    market = SyntheticMarket([SYMBOL], seed=11, tick_hz=10)
    venues = SyntheticBooks(seed=11, depth=50)
    books = SymbolBooks(SYMBOL, depth=50)
    found = []
    for step in range(steps):
        now = START + step * SECOND // 10
        market.advance(now)
        for event in venues.advance(now, market.prices):
            books.apply(event)
        found.append(books.consolidated(step))
    return tuple(found)


def subscribe(**fields: object) -> object:
    message = {"type": "subscribe", "stream_type": "orderbook", "symbols": [SYMBOL], **fields}
    return parse_client_message(json.dumps(message))


def test_an_orderbook_subscription_takes_a_depth_and_a_venue() -> None:
    request = subscribe(depth=50, venue="synthetic:beta", interval_ms=100)
    assert (request.stream_type, request.depth, request.venue) == (
        StreamType.ORDERBOOK,
        50,
        "synthetic:beta",
    )
    assert subscribe().depth is None and subscribe().venue is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"depth": 20}, "depth"),
        ({"depth": "10"}, "depth"),
        ({"venue": "Not A Venue!"}, "venue"),
        ({"venue": "x" * 65}, "venue"),
        ({"stream_type": "price", "depth": 10}, "orderbook stream type only"),
        ({"stream_type": "quote", "venue": "consolidated"}, "orderbook stream type only"),
    ],
)
def test_bad_orderbook_subscriptions_are_refused(fields: dict, words: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        subscribe(**fields)
    assert refused.value.code == ErrorCode.SUBSCRIPTION_ERROR
    assert words in refused.value.message


def test_the_ack_says_depth_and_venue() -> None:
    request = subscribe(depth=25)
    subscription = Subscription(StreamType.ORDERBOOK, [SYMBOL], 100, depth=25)
    ack = json.loads(frames.subscription_ack(subscription, request))
    assert (ack["depth"], ack["venue"]) == (25, "consolidated")


def test_an_older_book_never_replaces_a_newer_one() -> None:
    books = consolidated_books()
    store = BookStore()
    store.update(books[5])
    store.update(books[3])
    assert store.books[SYMBOL] is books[5]
    assert store.view("ETH/USDT", "consolidated") is None


def levels(side: list) -> list[tuple[Decimal, ...]]:
    return [(Decimal(level[0]), Decimal(level[1])) for level in side]


def expected(book, venue: str, depth: int) -> tuple[list, list]:
    """The top ``depth`` levels ``(price, size)`` of a consolidated book, or of one venue."""
    if venue == "consolidated":
        pick = lambda side: [(Decimal(lv[0]), Decimal(lv[1])) for lv in side]  # noqa: E731
    else:
        index = 2 + book.venues.index(venue)
        pick = lambda side: [(Decimal(lv[0]), Decimal(lv[index])) for lv in side if lv[index]]  # noqa: E731
    return pick(book.bids)[:depth], pick(book.asks)[:depth]


@settings(deadline=None)  # the first example builds the cached log
@given(
    st.sampled_from(["consolidated", "synthetic:alpha", "synthetic:gamma"]),
    st.sampled_from([10, 25, 50]),
    st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_a_client_rebuilds_every_book_it_is_sent(venue: str, depth: int, collects: list) -> None:
    store = BookStore()
    subscription = Subscription(StreamType.ORDERBOOK, [SYMBOL], 100, depth=depth, venue=venue)
    client = ClientBook()
    sent = 0
    for book, collect in zip(consolidated_books(), collects, strict=True):
        store.update(book)
        if not collect:
            continue
        for item in store.collect(subscription):
            message = json.loads(item)
            client.apply(message)  # raises on a seq gap or a checksum mismatch
            sent += 1
            assert message["venue"] == venue and message["depth"] == depth
            if venue == "consolidated" and message["action"] == "snapshot":
                assert message["venues"] == book.venues
        bids, asks = client.levels()
        assert (levels(bids), levels(asks)) == expected(book, venue, depth)
    assert sent <= sum(collects)


def test_a_corrupted_delta_is_detected() -> None:
    store = BookStore()
    subscription = Subscription(StreamType.ORDERBOOK, [SYMBOL], 100)
    client = ClientBook()
    books = consolidated_books()
    store.update(books[0])
    client.apply(json.loads(store.collect(subscription)[0]))
    store.update(books[10])
    message = json.loads(store.collect(subscription)[0])
    assert message["action"] == "delta"
    level = message["bids"][0]
    level[1] = str(Decimal(level[1]) + 1)
    with pytest.raises(Exception, match="checksum"):
        client.apply(message)


def test_the_example_client_rebuilds_the_book_and_catches_a_corrupted_delta() -> None:
    path = Path(__file__).resolve().parent.parent / "examples" / "orderbook_client.py"
    spec = importlib.util.spec_from_file_location("orderbook_client", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    store = BookStore()
    subscription = Subscription(StreamType.ORDERBOOK, [SYMBOL], 100, depth=25)
    book, reference = example.Book(), ClientBook()
    for consolidated in consolidated_books():
        store.update(consolidated)
        for item in map(json.loads, store.collect(subscription)):
            book.apply(item)
            reference.apply(item)
            assert book.levels() == reference.levels()
    store.update(dataclasses.replace(consolidated_books()[0], seq=10**6))
    [item] = map(json.loads, store.collect(subscription))
    item["asks"][0][1] = "7" + item["asks"][0][1]
    with pytest.raises(example.Desync, match="checksum"):
        book.apply(item)


@pytest.mark.parametrize("venue", ["consolidated", "synthetic:beta"])
def test_replayed_books_reach_the_client_as_a_snapshot_then_checksummed_deltas(
    venue: str,
) -> None:
    subscription = Subscription(StreamType.ORDERBOOK, [SYMBOL], 100, depth=25, venue=venue)
    build = replayed_items(subscription)
    client, actions = ClientBook(), []
    for book in consolidated_books():
        message = build(book)
        if message is None:  # nothing this subscription shows changed
            continue
        client.apply(json.loads(json.dumps(message)))  # raises on a seq gap or bad checksum
        actions.append(message["action"])
        bids, asks = client.levels()
        assert (levels(bids), levels(asks)) == expected(book, venue, 25)
    assert actions[0] == "snapshot" and actions.count("delta") >= 30
