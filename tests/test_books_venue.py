"""The per-venue L2 book (domain/books/venue_book.py): continuity rules, checksums,
depth, and the promise that a book it shows is exactly the venue's."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.books.checksums import kraken_checksum, okx_checksum
from domain.books.continuity import FeedRules, rules_for
from domain.books.venue_book import Outcome, VenueBook
from tests.support_books import delta, snapshot

NEXT = rules_for("synthetic:alpha")
OKX = rules_for("ccxt:okx")
KRAKEN = rules_for("ccxt:kraken")
BIDS = [["100.0", "1"], ["99.5", "2"], ["99", "3"]]
ASKS = [["101", "1"], ["101.5", "2"], ["102", "3"]]


def outcome(book: VenueBook, event) -> Outcome:
    return book.apply(event).outcome


def test_binance_rule_first_delta_straddles_the_snapshot_then_each_follows_on() -> None:
    book = VenueBook(NEXT)
    assert outcome(book, snapshot(BIDS, ASKS, last=100)) is Outcome.APPLIED
    assert outcome(book, delta([["99", "0"]], [], first=95, last=100)) is Outcome.STALE
    assert book.top(5)[0][-1] == ("99", "3")  # a stale delta changes nothing
    assert outcome(book, delta([["99", "0"]], [], first=99, last=102)) is Outcome.APPLIED
    assert outcome(book, delta([], [["101", "4"]], first=103, last=103)) is Outcome.APPLIED
    assert outcome(book, delta([], [["101", "9"]], first=103, last=103)) is Outcome.STALE
    assert book.top(5) == (
        [("100.0", "1"), ("99.5", "2")],
        [("101", "4"), ("101.5", "2"), ("102", "3")],
    )
    result = book.apply(delta([["100.5", "1"]], [], first=105, last=106))
    assert result.outcome is Outcome.GAP and "105..106" in result.detail
    assert (book.valid, book.top(5)) == (False, ([], []))  # never a corrupted book
    assert outcome(book, delta([], [], first=107, last=107)) is Outcome.WAITING
    assert outcome(book, snapshot(BIDS, ASKS, last=200)) is Outcome.APPLIED
    assert book.valid


def test_a_first_delta_that_starts_after_the_snapshot_is_a_gap() -> None:
    book = VenueBook(NEXT)
    book.apply(snapshot(BIDS, ASKS, last=100))
    assert outcome(book, delta([], [], first=102, last=103)) is Outcome.GAP


@pytest.mark.parametrize("first, last", [(None, 5), (5, None)])
def test_a_delta_without_its_ids_is_a_gap(first, last) -> None:
    book = VenueBook(NEXT)
    book.apply(snapshot(BIDS, ASKS, last=4))
    assert outcome(book, delta([], [], first=first, last=last)) is Outcome.GAP


def test_okx_rule_chains_by_the_previous_id() -> None:
    book = VenueBook(FeedRules(OKX.sequence))  # the sequence rule alone
    book.apply(snapshot(BIDS, ASKS, last=10, provider="ccxt:okx"))
    assert outcome(book, delta([], [], first=None, last=11, prev=10)) is Outcome.APPLIED
    assert outcome(book, delta([], [], first=None, last=11, prev=10)) is Outcome.STALE
    assert outcome(book, delta([], [], first=None, last=11, prev=11)) is Outcome.APPLIED
    assert outcome(book, delta([], [], first=None, last=5, prev=11)) is Outcome.APPLIED  # reset
    assert outcome(book, delta([], [], first=None, last=9, prev=None)) is Outcome.GAP


def test_a_checksum_mismatch_empties_the_book() -> None:
    book = VenueBook(KRAKEN)
    good = kraken_checksum(ASKS, BIDS)
    assert outcome(book, snapshot(BIDS, ASKS, depth=10, checksum=good)) is Outcome.APPLIED
    moved = kraken_checksum(ASKS, [["100.0", "5"], *BIDS[1:]])
    assert (
        outcome(book, delta([["100.0", "5"]], [], first=2, last=2, checksum=moved))
        is Outcome.APPLIED
    )
    result = book.apply(delta([["100.0", "6"]], [], first=3, last=3, checksum=moved))
    assert result.outcome is Outcome.CHECKSUM and str(moved) in result.detail
    assert book.top(10) == ([], [])


def test_checksums_as_kraken_and_okx_define_them() -> None:
    """Kraken: asks then bids, digits without the point or leading zeros; OKX: bid:ask
    interleaved, text as sent, signed."""
    assert kraken_checksum([["0.05", "1.50"]], [["0.04", "0.00100"]]) == zlib.crc32(b"51504100")
    unsigned = zlib.crc32(b"99:1:101:2:98:3")
    signed = unsigned - (1 << 32) if unsigned >= 1 << 31 else unsigned
    assert okx_checksum([["99", "1"], ["98", "3"]], [["101", "2"]]) == signed


@pytest.mark.parametrize(
    "level",
    [
        ["abc", "1"],
        ["100", "1e-5"],
        ["100", "-1"],
        ["0", "1"],
        ["100", "1", "7"],
        ["NaN", "1"],
        [100, "1"],
    ],
)
def test_a_malformed_level_invalidates_the_book(level) -> None:
    book = VenueBook(NEXT)
    book.apply(snapshot(BIDS, ASKS, last=1))
    assert outcome(book, delta([level], [], first=2, last=2)) is Outcome.MALFORMED
    assert (book.valid, book.top(5)) == (False, ([], []))
    assert outcome(VenueBook(NEXT), snapshot([level], [], last=1)) is Outcome.MALFORMED


def test_a_windowed_feed_is_truncated_to_its_window_and_refilled_by_the_venue() -> None:
    """Kraken at depth 3: an insertion pushes the third level out (no delete is sent); when a
    level is deleted, the venue sends the one that moves into the window."""
    book = VenueBook(FeedRules(windowed=True))
    book.apply(snapshot(BIDS, ASKS, depth=3))
    book.apply(delta([["100.2", "5"]], [], first=2, last=2))
    assert book.top(5)[0] == [("100.2", "5"), ("100.0", "1"), ("99.5", "2")]
    assert book.bids.horizon is None and book.edge(book.bids) == -99.5
    book.apply(delta([["100.0", "0"], ["98", "7"]], [], first=3, last=3))
    assert book.top(5)[0] == [("100.2", "5"), ("99.5", "2"), ("98", "7")]


def test_levels_beyond_a_partial_snapshot_are_ignored_and_a_thin_side_asks_for_a_snapshot():
    """A REST snapshot of 3 levels (depth 3: the venue has more): what lies past its worst
    level is unknown, so a level reported there is not shown as the third."""
    book = VenueBook(NEXT, depth=2)
    book.apply(snapshot(BIDS, ASKS, depth=3, last=1))
    assert book.edge(book.bids) == -99.0
    book.apply(delta([["99.5", "0"], ["98", "4"]], [], first=2, last=2))
    assert book.top(5)[0] == [("100.0", "1"), ("99", "3")]
    result = book.apply(delta([["100.0", "0"]], [], first=3, last=3))
    assert result.outcome is Outcome.DEPTH and "bids thinned to 1" in result.detail


def test_a_side_keeps_a_reserve_and_sets_its_horizon_where_it_cuts() -> None:
    book = VenueBook(NEXT, depth=1)  # keeps 4 levels a side
    levels = [[str(100 - i), "1"] for i in range(6)]
    book.apply(snapshot(levels, [], last=1))
    assert len(book.bids) == 4 and book.bids.horizon == -97.0


def shown(side) -> list[tuple[str, str]]:
    return side.top(len(side))


def venue_levels(venue: dict[int, str], bids: bool, edge: float | None) -> list[tuple[str, str]]:
    """The venue's levels of one side, best first, up to ``edge`` (a key: -price for bids)."""
    ordered = sorted(venue, reverse=bids)
    return [
        (str(price), venue[price])
        for price in ordered
        if edge is None or (-price if bids else price) <= edge
    ]


sizes = st.sampled_from(["0", "0", "1", "2.5", "7"])
changes = st.one_of(
    st.tuples(st.just(True), st.integers(1, 19), sizes),
    st.tuples(st.just(False), st.integers(21, 40), sizes),
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.lists(changes, max_size=40),
    deltas=st.lists(st.lists(changes, max_size=6), max_size=30),
    depth=st.integers(1, 4),
    partial=st.booleans(),
)
def test_every_level_shown_is_exactly_the_venues(start, deltas, depth, partial) -> None:
    """Model: the venue's whole book, bids at prices 1-19, asks at 21-40. Whatever depth
    the book keeps and whatever the deltas, while it is valid each side shows exactly the
    venue's levels up to its edge; it turns invalid only by the DEPTH rule."""
    venue: dict[bool, dict[int, str]] = {True: {}, False: {}}

    def change(updates) -> tuple[list[list[str]], list[list[str]]]:
        for bids, price, size in updates:
            if size == "0":
                venue[bids].pop(price, None)
            else:
                venue[bids][price] = size
        return (
            [[str(p), s] for b, p, s in updates if b],
            [[str(p), s] for b, p, s in updates if not b],
        )

    change(start)
    levels = [[[str(p), s] for p, s in venue[bids].items()] for bids in (True, False)]
    limit = max(1, len(venue[True]), len(venue[False])) if partial else None
    book = VenueBook(NEXT, depth=depth)
    assert outcome(book, snapshot(*levels, last=0, depth=limit)) is Outcome.APPLIED
    for number, updates in enumerate(deltas, start=1):
        result = book.apply(delta(*change(updates), first=number, last=number))
        if result.outcome is not Outcome.APPLIED:
            assert result.outcome is Outcome.DEPTH
            return
        for side, bids in ((book.bids, True), (book.asks, False)):
            assert shown(side) == venue_levels(venue[bids], bids, book.edge(side))
            assert len(side) <= book.capacity
