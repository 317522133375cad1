"""The consolidated book (domain/books/consolidated.py): its invariants after every event
of generated multi-venue stories."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.books.consolidated import SymbolBooks
from domain.books.venue_book import Outcome
from schemas.books import BookEvent, ConsolidatedBook
from tests.support_books import delta, snapshot

FRESHNESS_US = 2_000_000
VENUES = ("ccxt:binance", "synthetic:alpha", "synthetic:beta")
prices = st.integers(90, 115).map(lambda ticks: f"{ticks / 2:g}")
sizes = st.sampled_from(["0", "1", "0.5", "2.25", "3.000"])
levels = st.lists(st.tuples(prices, sizes).map(list), max_size=8)
steps = st.tuples(
    st.integers(0, len(VENUES) - 1),
    st.sampled_from(["snapshot", "delta", "delta", "delta", "gap"]),
    levels,
    levels,
    st.integers(0, 1_500_000),  # event time step
    st.none() | st.integers(2, 6),  # snapshot depth asked (a partial book) or the whole book
)


def story(raw: list[tuple]) -> list[BookEvent]:
    """Book events of the generated steps: each venue numbers its own deltas; a ``gap`` skips
    a number; snapshot levels with a zero size are left out."""
    numbers = dict.fromkeys(VENUES, 0)
    now = 1_000_000
    events = []
    for venue_index, kind, bids, asks, step, depth in raw:
        venue = VENUES[venue_index]
        now += step
        numbers[venue] += 2 if kind == "gap" else 1
        number = numbers[venue]
        if kind == "snapshot":
            events.append(
                snapshot(
                    [lv for lv in bids if lv[1] != "0"],
                    [lv for lv in asks if lv[1] != "0"],
                    last=number,
                    provider=venue,
                    ts=now,
                    depth=depth,
                )
            )
        else:
            events.append(delta(bids, asks, first=number, last=number, provider=venue, ts=now))
    return events


def _best(side) -> float | None:
    return side.sign * side.keys[0] if side.keys else None


def check(
    books: SymbolBooks, record: ConsolidatedBook, applied: dict[str, int], depth: int
) -> None:
    """The invariants of one consolidated book, from the venue books and the event times."""
    watermark = max(applied.values(), default=None)
    fresh = sorted(
        name
        for name, ts in applied.items()
        if books.venues[name].valid and ts >= watermark - FRESHNESS_US
    )
    assert record.venues == fresh  # stale and invalid venues are absent
    venue_books = [books.venues[name] for name in fresh]
    for side_name, rows, crossed in (
        ("bids", record.bids, record.crossed_bids),
        ("asks", record.asks, record.crossed_asks),
    ):
        sides = [getattr(book, side_name) for book in venue_books]
        edges = [
            e
            for book, side in zip(venue_books, sides, strict=True)
            if (e := book.edge(side)) is not None
        ]
        keys = sorted(
            {key for side in sides for key in side.keys[:depth] if not edges or key <= min(edges)}
        )[:depth]
        sign = -1.0 if side_name == "bids" else 1.0
        assert [sign * float(row[0]) for row in rows] == keys  # best first, nothing missing
        for row in rows:
            key = sign * float(row[0])
            for side, size in zip(sides, row[2:], strict=True):
                expected = side.levels.get(key)
                assert (Decimal(size) == Decimal(expected[1])) if expected else size == ""
            assert Decimal(row[1]) == sum(Decimal(size) for size in row[2:] if size)
        opposite = [
            _best(getattr(book, "asks" if side_name == "bids" else "bids")) for book in venue_books
        ]
        expected_crossed = [
            index
            for index, row in enumerate(rows)
            if any(
                size
                and other is not None
                and venue != other_venue
                and (other < float(row[0]) if side_name == "bids" else other > float(row[0]))
                for venue, size in enumerate(row[2:])
                for other_venue, other in enumerate(opposite)
            )
        ]
        assert crossed == expected_crossed


@settings(max_examples=300, deadline=None)
@given(raw=st.lists(steps, max_size=40), depth=st.integers(1, 6))
def test_consolidated_book_invariants_after_every_event(raw, depth) -> None:
    """Each level's total is the sum of its venues' sizes and each venue's size is its book's;
    the levels are the best ``depth`` prices of the fresh venues up to their nearest edge;
    stale or invalid venues are absent; a level is crossed exactly when a venue quoting it
    is beyond another venue's best opposite price."""
    books = SymbolBooks("BTC/USDT", depth=depth, freshness_us=FRESHNESS_US)
    applied: dict[str, int] = {}
    for seq, event in enumerate(story(raw)):
        if books.apply(event).outcome is Outcome.APPLIED:
            applied[event.provider] = max(applied.get(event.provider, 0), event.ts_event)
        check(books, books.consolidated(seq), applied, depth)


@settings(max_examples=100, deadline=None)
@given(raw=st.lists(steps, max_size=40))
def test_the_consolidated_books_are_a_function_of_the_events(raw) -> None:
    events = story(raw)

    def replay() -> list[ConsolidatedBook]:
        books = SymbolBooks("BTC/USDT", depth=4)
        outputs = []
        for seq, event in enumerate(events):
            books.apply(event)
            outputs.append(books.consolidated(seq))
        return outputs

    assert replay() == replay()


def test_two_venues_merge_with_their_sizes_and_a_cross_is_flagged() -> None:
    books = SymbolBooks("BTC/USDT", depth=5)
    books.apply(snapshot([["100", "1"], ["99", "2"]], [["101", "1"]], provider="synthetic:a"))
    books.apply(
        snapshot([["101.50", "3"], ["100.0", "0.5"]], [["102", "4"]], provider="synthetic:b")
    )
    record = books.consolidated(7)
    assert (record.venues, record.seq) == (["synthetic:a", "synthetic:b"], 7)
    assert record.bids == [
        ["101.5", "3", "", "3"],
        ["100", "1.5", "1", "0.5"],
        ["99", "2", "2", ""],
    ]
    assert record.asks == [["101", "1", "1", ""], ["102", "4", "", "4"]]
    # b's bid 101.5 is above a's ask 101 (and so a's ask below b's bid): an arbitrage signal
    assert (record.crossed_bids, record.crossed_asks) == ([0], [0])


def test_a_venue_that_stops_ages_out_and_a_future_clock_cannot_age_the_others() -> None:
    books = SymbolBooks("BTC/USDT", freshness_us=2_000_000, future_tolerance_us=1_000_000)
    books.apply(snapshot([["100", "1"]], [], provider="synthetic:a", ts=10_000_000))
    books.apply(snapshot([["100", "2"]], [], provider="synthetic:b", ts=11_000_000))
    assert books.fresh() == ["synthetic:a", "synthetic:b"]
    books.apply(delta([["100", "3"]], [], first=2, last=2, provider="synthetic:b", ts=12_500_000))
    assert books.fresh() == ["synthetic:b"]
    assert books.consolidated(1).bids == [["100", "3", "3"]]
    far = BookEvent(
        "BTC/USDT",
        "synthetic:c",
        "SNAPSHOT",
        99_000_000,
        12_600_000,
        [["100", "1"]],
        [],
        last_update_id=1,
    )
    books.apply(far)  # counted at its ingest time plus the tolerance: 13.6 s
    assert books.watermark == 13_600_000 and "synthetic:b" in books.fresh()
