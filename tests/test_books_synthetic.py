"""The synthetic venues' order books (ingest/books/synthetic_books.py)."""

from __future__ import annotations

from domain.books.consolidated import SymbolBooks
from domain.books.venue_book import Outcome
from ingest.books.synthetic_books import SyntheticBooks
from ingest.synthetic import SyntheticMarket
from schemas.books import DELTA, SNAPSHOT

SECOND = 1_000_000
START = 1_700_000_000 * SECOND


def run(seed: int, steps: int = 30) -> list:
    market = SyntheticMarket(["BTC/USDT", "ETH/USDT"], seed=seed, tick_hz=4)
    books = SyntheticBooks(seed=seed, depth=10)
    events = []
    for step in range(steps):
        now = START + step * SECOND // 4
        market.advance(now)
        events.extend(books.advance(now, market.prices))
    return events


def test_books_are_a_function_of_the_seed_and_the_times() -> None:
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_snapshots_then_deltas_that_every_venue_book_applies() -> None:
    events = run(7)
    kinds: dict[tuple[str, str], list[str]] = {}
    for event in events:
        kinds.setdefault((event.provider, event.symbol), []).append(event.kind)
    assert len(kinds) == 6  # three venues, two symbols
    assert all(k[0] == SNAPSHOT and set(k[1:]) == {DELTA} for k in kinds.values())
    books = {symbol: SymbolBooks(symbol, depth=10) for symbol in ("BTC/USDT", "ETH/USDT")}
    assert {books[e.symbol].apply(e).outcome for e in events} == {Outcome.APPLIED}
    for symbol_books in books.values():
        for book in symbol_books.venues.values():
            bids, asks = book.top(10)
            assert len(bids) == len(asks) == 10
            assert float(bids[0][0]) < float(asks[0][0])  # a venue's own book is not crossed


def test_the_consolidated_book_of_the_synthetic_venues_has_each_venues_sizes() -> None:
    books = SymbolBooks("BTC/USDT", depth=10)
    for event in run(7):
        if event.symbol == "BTC/USDT":
            books.apply(event)
    record = books.consolidated(1)
    assert record.venues == ["synthetic:alpha", "synthetic:beta", "synthetic:gamma"]
    for column in range(3):
        assert any(level[2 + column] for level in record.bids + record.asks)


def test_the_books_follow_the_price() -> None:
    books = SyntheticBooks(seed=1, depth=5)
    book = SymbolBooks("BTC/USDT", depth=5)
    for event in books.advance(START, {"BTC/USDT": 65_000.0}):
        book.apply(event)
    moved = books.advance(START + SECOND, {"BTC/USDT": 66_000.0})
    assert {book.apply(event).outcome for event in moved} == {Outcome.APPLIED}
    bids, asks = book.venues["synthetic:alpha"].top(5)
    assert 65_900 < float(bids[0][0]) < 66_000 < float(asks[0][0]) < 66_100
    assert any(size == "0" for _, size in moved[0].bids + moved[0].asks)  # the old levels left


def test_snapshots_again_when_asked_and_the_books_follow_on() -> None:
    market = SyntheticMarket(["BTC/USDT"], seed=3, tick_hz=4)
    books = SyntheticBooks(seed=3, depth=10, snapshot_every_us=2 * SECOND)
    consolidated = SymbolBooks("BTC/USDT", depth=10)
    kinds = []
    for step in range(40):
        now = START + step * SECOND // 4
        market.advance(now)
        for event in books.advance(now, market.prices):
            assert consolidated.apply(event).outcome is Outcome.APPLIED
            if event.provider == "synthetic:alpha":
                kinds.append(event.kind)
    assert [n for n, kind in enumerate(kinds) if kind == SNAPSHOT] == [0, 8, 16, 24, 32]
    assert len(consolidated.fresh()) == 3


def test_books_of_symbols_no_longer_simulated_are_dropped():
    books = SyntheticBooks(seed=3, depth=10)
    books.advance(1_700_000_000_000_000, {"BTC/USDT": 60_000.0, "PEPE/USDT": 0.00001})
    assert {symbol for _, symbol in books.books} == {"BTC/USDT", "PEPE/USDT"}
    books.advance(1_700_000_001_000_000, {"BTC/USDT": 60_001.0})
    assert {symbol for _, symbol in books.books} == {"BTC/USDT"}
