"""The gateway's order book stream (domain/books/protocol.py): a client rebuilds the
server's book from the messages at every checksum point, whatever the conflation, and a
corrupted or lost message is detected."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.books.checksums import kraken_checksum
from domain.books.consolidated import SymbolBooks
from domain.books.continuity import DEFAULT_RULES
from domain.books.protocol import (
    BookDesync,
    BookPublisher,
    BookView,
    ClientBook,
    consolidated_view,
    venue_view,
)
from domain.books.venue_book import Outcome, VenueBook
from tests.support_books import delta, snapshot

prices = st.integers(1, 400).map(lambda n: f"{n / 4:g}")
sizes = st.sampled_from(["0", "0", "1", "0.25", "12.5", "0.001", "3"])
changes = st.lists(st.tuples(prices, sizes).map(list), max_size=12)
stories = st.lists(st.tuples(changes, changes), min_size=1, max_size=40)


def venue_story(start_bids, start_asks, deltas) -> list[BookView]:
    """The views of a venue book (bids below 50, asks above) after a snapshot and each delta."""
    book = VenueBook(DEFAULT_RULES, depth=50)
    below = [level for level in start_bids if float(level[0]) < 50 and level[1] != "0"]
    above = [level for level in start_asks if float(level[0]) >= 50 and level[1] != "0"]
    assert book.apply(snapshot(below, above, last=0)).outcome is Outcome.APPLIED
    views = [venue_view("BTC/USDT", "synthetic:alpha", book, 50)]
    for number, (bids, asks) in enumerate(deltas, start=1):
        event = delta(
            [lv for lv in bids if float(lv[0]) < 50],
            [lv for lv in asks if float(lv[0]) >= 50],
            first=number,
            last=number,
        )
        assert book.apply(event).outcome is Outcome.APPLIED
        views.append(venue_view("BTC/USDT", "synthetic:alpha", book, 50))
    return views


def same_book(client: ClientBook, view: BookView, depth: int) -> None:
    """The client's levels are the view's top ``depth``: prices, sizes and venue sizes."""
    bids, asks = client.levels()
    for got, expected in ((bids, view.bids[:depth]), (asks, view.asks[:depth])):
        assert [Decimal(level[0]) for level in got] == [Decimal(lv[0]) for lv in expected]
        assert [Decimal(level[1]) for level in got] == [Decimal(lv[1]) for lv in expected]
        assert [
            [Decimal(s) if s else None for s in (level[2] if len(level) > 2 else [])]
            for level in got
        ] == [[Decimal(s) if s else None for s in lv[2]] for lv in expected]
    if view.venues:
        assert client.venues == list(view.venues)


VENUE_STORY = {
    "start": changes,
    "start_asks": changes,
    "deltas": stories,
    "depth": st.sampled_from([10, 25, 50]),
}


@settings(max_examples=100, deadline=None)
@given(**VENUE_STORY, sent=st.lists(st.booleans(), min_size=41, max_size=41))
def test_a_client_rebuilds_the_venue_book_at_every_message_whatever_the_conflation(
    start, start_asks, deltas, depth, sent
) -> None:
    """The server offers the book only at the steps ``sent`` marks (the conflation); at every
    message the client's book passes the checksum and equals the server's."""
    publisher, client = BookPublisher(depth), ClientBook()
    messages = 0
    for view, send in zip(venue_story(start, start_asks, deltas), sent, strict=False):
        if not send and messages:
            continue
        message = publisher.publish(view)
        if message is None:
            continue
        messages += 1
        client.apply(message)  # raises BookDesync on a checksum mismatch or a seq gap
        assert message["seq"] == messages
        same_book(client, view, depth)


venue_steps = st.tuples(st.integers(0, 2), changes, changes, st.integers(0, 1_000_000))


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(venue_steps, min_size=1, max_size=40),
    depth=st.sampled_from([10, 25]),
    sent=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_a_client_rebuilds_the_consolidated_book_with_each_venues_size(steps, depth, sent) -> None:
    books = SymbolBooks("BTC/USDT", depth=depth)
    numbers = [0, 0, 0]
    publisher, client = BookPublisher(depth), ClientBook()
    now = 0
    for (venue, bids, asks, step), send in zip(steps, sent, strict=False):
        now += step
        provider = f"synthetic:{'abc'[venue]}"
        if numbers[venue] == 0:
            event = snapshot(
                [lv for lv in bids if lv[1] != "0"],
                [lv for lv in asks if lv[1] != "0"],
                provider=provider,
                ts=now,
            )
        else:
            event = delta(
                bids,
                asks,
                first=numbers[venue] + 1,
                last=numbers[venue] + 1,
                provider=provider,
                ts=now,
            )
        numbers[venue] += 1
        books.apply(event)
        view = consolidated_view(books.consolidated(now))
        message = publisher.publish(view) if send else None
        if message is not None:
            client.apply(message)
            same_book(client, view, depth)
            assert [Decimal(p) for p in message["crossed"]["bids"]] == [
                Decimal(p) for p in view.crossed_bids
            ]


def corrupt(message: dict[str, Any], how: int, index: int) -> dict[str, Any] | None:
    """``message`` with one level dropped, resized or moved; None if it has no level."""
    bad = copy.deepcopy(message)
    levels = [(side, i) for side in ("bids", "asks") for i in range(len(bad[side]))]
    if not levels:
        return None
    side, position = levels[index % len(levels)]
    level = bad[side][position]
    if how == 0:
        del bad[side][position]
    elif how == 1:
        size = Decimal(level[1])
        places = -size.as_tuple().exponent if "." in level[1] else 0
        level[1] = str(size + Decimal(1).scaleb(-places)) if "." in level[1] else str(size + 1)
    else:
        level[0] = level[0] + "1" if "." in level[0] else level[0] + ".5"
    return bad


def top_10(client: ClientBook) -> tuple[list[Any], list[Any]]:
    bids, asks = client.levels()
    return bids[:10], asks[:10]


@settings(max_examples=100, deadline=None)
@given(**VENUE_STORY, how=st.integers(0, 2), index=st.integers(0, 100))
def test_a_corrupted_delta_is_detected_by_the_checksum_when_it_changes_the_top_10(
    start, start_asks, deltas, depth, how, index
) -> None:
    """The checksum is Kraken's, of the top 10 levels a side: a corrupted delta is caught
    exactly when the book it leaves differs from the right one there (below, it is not)."""
    publisher, client = BookPublisher(depth), ClientBook()
    for view in venue_story(start, start_asks, deltas):
        message = publisher.publish(view)
        if message is None:
            continue
        bad = corrupt(message, how, index) if message["action"] == "delta" else None
        trial = copy.deepcopy(client)
        client.apply(message)
        if bad is not None:
            try:
                trial.apply(bad)
                caught = False
            except BookDesync as error:
                assert "checksum" in str(error)
                caught = True
            assert caught == (top_10(trial) != top_10(client))


def view_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> BookView:
    return BookView(
        "BTC/USDT",
        "synthetic:alpha",
        1_700_000_000_000_000,
        tuple((p, s, ()) for p, s in bids),
        tuple((p, s, ()) for p, s in asks),
    )


def test_messages_snapshot_then_deltas_with_seq_fixed_decimals_and_removals() -> None:
    publisher = BookPublisher(10)
    first = publisher.publish(view_of([("100.5", "1"), ("100", "2")], [("101", "0.25")]))
    assert {k: first[k] for k in ("action", "seq", "venue", "depth", "bids", "asks")} == {
        "action": "snapshot",
        "seq": 1,
        "venue": "synthetic:alpha",
        "depth": 10,
        "bids": [["100.5", "1.00"], ["100.0", "2.00"]],
        "asks": [["101.0", "0.25"]],
    }
    assert first["timestamp"] == "2023-11-14T22:13:20.000000Z" and "crossed" not in first
    assert publisher.publish(view_of([("100.5", "1"), ("100", "2")], [("101", "0.25")])) is None
    second = publisher.publish(view_of([("100.5", "3")], [("101", "0.25")]))
    assert (second["action"], second["seq"]) == ("delta", 2)
    assert (second["bids"], second["asks"]) == ([["100.5", "3.00"], ["100.0", "0.00"]], [])
    third = publisher.publish(view_of([("100.5", "3")], [("101", "0.125")]))
    assert (third["action"], third["asks"]) == ("snapshot", [["101.0", "0.125"]])
    client = ClientBook()
    for message in (first, second, third):
        client.apply(message)
    assert client.levels() == ([["100.5", "3.000"]], [["101.0", "0.125"]])


def test_a_lost_message_is_a_seq_gap() -> None:
    publisher, client = BookPublisher(10), ClientBook()
    client.apply(publisher.publish(view_of([("100", "1")], [])))
    publisher.publish(view_of([("100", "2")], []))
    with pytest.raises(BookDesync, match="seq 3 does not follow 1"):
        client.apply(publisher.publish(view_of([("100", "3")], [])))


@pytest.mark.parametrize(("level", "caught"), [(9, True), (10, False), (39, False)])
def test_the_checksum_is_krakens_of_the_top_10_levels(level: int, caught: bool) -> None:
    """A corrupted size at the 10th level is caught; at the 11th or 40th it is not."""
    levels = [(str(1000 - i), "1") for i in range(50)]
    publisher, client = BookPublisher(50), ClientBook()
    snapshot = publisher.publish(view_of(levels, []))
    assert snapshot["checksum"] == kraken_checksum([], snapshot["bids"])
    client.apply(snapshot)
    price = str(1000 - level)
    changed = publisher.publish(view_of([*levels[:level], (price, "2"), *levels[level + 1 :]], []))
    assert changed["bids"] == [[price, "2"]]
    changed["bids"][0][1] = "3"
    if caught:
        with pytest.raises(BookDesync, match="checksum"):
            client.apply(changed)
    else:
        client.apply(changed)


@pytest.mark.parametrize("depth", [0, 5, 20, 100])
def test_only_depths_10_25_and_50(depth: int) -> None:
    with pytest.raises(ValueError, match="10, 25, 50"):
        BookPublisher(depth)
