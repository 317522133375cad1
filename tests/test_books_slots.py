"""Consolidated books flushed once per Kafka-time slot (domain/books/slots.py)."""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.books.replay import RangeFold
from domain.books.slots import BookSlots
from ingest.books.synthetic_books import SyntheticBooks
from ingest.synthetic import SyntheticMarket

SECOND = 1_000_000
START = 1_700_000_000 * SECOND
SLOT = SECOND // 4


def slots() -> BookSlots:
    return BookSlots(slot_us=SLOT, depth=10, freshness_us=2 * SECOND, future_tolerance_us=SECOND)


@functools.cache
def log(steps: int = 24, symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")) -> tuple:
    """(offset, Kafka time, event) of synthetic book events, ten steps a second."""
    market = SyntheticMarket(list(symbols), seed=5, tick_hz=10)
    books = SyntheticBooks(seed=5, depth=10)
    records = []
    for step in range(steps):
        now = START + step * SECOND // 10
        market.advance(now)
        for event in books.advance(now, market.prices):
            records.append((len(records), now + 1000, event))
    return tuple(records)


def run(records: tuple | list, state: BookSlots | None = None) -> list:
    state = state or slots()
    return [book for record in records for book in state.process(*record)]


def test_one_book_per_changed_symbol_per_slot_stamped_with_the_offset_before() -> None:
    records = log()
    books = run(records)
    slots_seen = sorted({time // SLOT for _, time, _ in records})
    assert len(books) == 2 * (len(slots_seen) - 1)  # the last slot is not flushed yet
    by_offset = {offset: time for offset, time, _ in records}
    for book in books:
        assert by_offset[book.seq] // SLOT < by_offset[book.seq + 1] // SLOT
        assert book.venues == ["synthetic:alpha", "synthetic:beta", "synthetic:gamma"]
        assert len(book.bids) == len(book.asks) == 10
        assert all(len(level) == 2 + 3 for level in book.bids + book.asks)
    assert [b.symbol for b in books[:2]] == ["BTC/USDT", "ETH/USDT"]


def test_a_symbol_without_events_is_not_flushed_and_a_bad_record_changes_nothing() -> None:
    state = slots()
    first = log(steps=3)
    for record in first:
        assert state.process(*record) == []
    assert state.process(len(first), START + 10 * SECOND, None) != []
    assert state.process(len(first) + 1, START + 20 * SECOND, None) == []
    assert state.next_offset == len(first) + 2


def test_a_venue_that_stops_is_dropped_after_the_freshness_window() -> None:
    records = log(steps=60, symbols=("BTC/USDT",))
    silent_from = START + 2 * SECOND
    kept = [
        (n, time, event)
        for n, (_, time, event) in enumerate(
            r for r in records if r[2].provider != "synthetic:gamma" or r[1] < silent_from
        )
    ]
    books = run(kept)
    assert books[0].venues == ["synthetic:alpha", "synthetic:beta", "synthetic:gamma"]
    assert books[-1].venues == ["synthetic:alpha", "synthetic:beta"]
    assert all(len(level) == 4 for level in books[-1].bids + books[-1].asks)
    dropped_at = next(b for b in books if len(b.venues) == 2).ts_event
    assert silent_from + 2 * SECOND - 200_000 <= dropped_at <= silent_from + 2 * SECOND + SLOT


@settings(deadline=None)  # the first example builds the cached log
@given(st.integers(min_value=0, max_value=200))
def test_a_restart_that_replays_the_log_gives_the_same_books(cut: int) -> None:
    records = log()
    cut = min(cut, len(records))
    whole = run(records)
    restored = slots()
    before = run(records[:cut], restored)
    assert before + run(records[cut:], restored) == whole


@settings(deadline=None)  # the first example builds the cached log
@given(
    st.integers(0, 40),
    st.integers(0, 40),
    st.sampled_from([("BTC/USDT",), ("ETH/USDT",), ("BTC/USDT", "ETH/USDT")]),
)
def test_a_replayed_range_gives_exactly_the_books_the_agent_made_in_it(
    first: int, last: int, symbols: tuple[str, ...]
) -> None:
    records = log(steps=40)
    start, end = START + first * SECOND // 10, START + last * SECOND // 10
    fold = RangeFold(slots(), frozenset(symbols), start, end)
    replayed = [book for record in records for book in fold.process(*record)]
    made = run(records)
    assert replayed == [
        book for book in made if book.symbol in symbols and start <= book.ts_event <= end
    ]
    if first <= last - 5:  # a range of half a second or more flushes books of each symbol
        assert {book.symbol for book in replayed} == set(symbols)
