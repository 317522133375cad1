"""Order book updates per second through the pure book core, beside a bare dict baseline.

Usage: ``python benchmarks/books_core.py [--quick] [--events N] [--out FILE]``

The input is the synthetic venues' books (three venues, one symbol, depth 50: snapshots,
then deltas every 100 ms of simulated time, the price a random walk of 0.5 bps a step),
generated once. In the same run it measures (each rate the fastest of three runs, since on a
shared machine the slower ones measure its load as well):

- ``bare``: each delta applied to two plain dicts per venue (price text -> size text, a
  zero size popping the level): the floor of any Python book;
- ``venue_books``: each event through its venue's ``VenueBook`` (parsing, sequence check,
  sorted levels, depth and horizon);
- ``consolidated``: each event through ``SymbolBooks.apply`` and then the consolidated book
  of the symbol (what a worker emitting a book per event would do);
- ``publish_consolidated`` / ``publish_venue``: each consolidated (or one venue's) book
  through a ``BookPublisher`` at depth 50, after every event and (consolidated) after every
  third one (one message per 100 ms of the three venues' books), per publish, with the JSON
  bytes per delta message;
- ``agent``: each event as the ``books`` agent takes it, Avro bytes decoded then
  ``BookSlots.process`` (a consolidated book per 250 ms of Kafka time), beside ``decode``
  alone (its floor), per event;
- ``gateway``: each consolidated book the agent made into the gateway's ``BookStore`` and
  collected by one orderbook subscription at depth 50 (publisher and JSON encoding), per
  book, with the JSON bytes of a delta item on the wire;
- the Avro bytes of a delta ``BookEvent`` and of a ``ConsolidatedBook``;
- the memory of one book at depth 50 (``tracemalloc``): a ``VenueBook`` holding 50 levels a
  side, the same levels in two plain dicts, and a windowed feed's book holding OKX's 400.

Prints the results as JSON and writes them to ``--out`` if given. Pure CPU, no broker.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import run_facts

from domain.books.consolidated import SymbolBooks
from domain.books.continuity import DEFAULT_RULES, rules_for
from domain.books.protocol import BookPublisher, consolidated_view, venue_view
from domain.books.slots import BookSlots
from domain.books.venue_book import VenueBook
from gateway.books import BookStore
from gateway.protocol import StreamType
from gateway.subscription import Subscription
from ingest.books.synthetic_books import SyntheticBooks
from schemas.books import DELTA, SNAPSHOT, BookEvent, ConsolidatedBook
from schemas.codec import decode, encode

SYMBOL = "BTC/USDT"
STEP_US = 100_000
STEP_BPS = 0.5
REPEATS = 3
START_US = 1_763_807_400_000_000


def synthetic_events(count: int) -> list[BookEvent]:
    """``count`` book events of the default synthetic venues, one symbol, 100 ms steps."""
    books = SyntheticBooks(seed=7, depth=50)
    walk = random.Random(7)
    price, now, events = 65_000.0, START_US, []
    while len(events) < count:
        price *= 1.0 + walk.gauss(0.0, STEP_BPS / 10_000)
        events.extend(books.advance(now, {SYMBOL: price}))
        now += STEP_US
    return events[:count]


def rate(count: int, run: Callable[[], object]) -> dict[str, float]:
    """Items per second and microseconds per item of ``run`` (``count`` items), the fastest
    of ``REPEATS`` runs: on a shared machine the others measure its load too."""
    seconds = []
    for _ in range(REPEATS):
        gc.collect()
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    best = min(seconds)
    return {"per_s": round(count / best), "us_each": round(best / count * 1e6, 2)}


def bare(events: list[BookEvent]) -> None:
    books: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for event in events:
        if event.kind == SNAPSHOT:
            books[event.provider] = (dict(map(tuple, event.bids)), dict(map(tuple, event.asks)))
            continue
        for side, levels in zip(books[event.provider], (event.bids, event.asks), strict=True):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size


def venue_books(events: list[BookEvent]) -> None:
    books: dict[str, VenueBook] = {}
    for event in events:
        book = books.get(event.provider)
        if book is None:
            book = books[event.provider] = VenueBook(rules_for(event.provider))
        book.apply(event)


def consolidated(events: list[BookEvent]) -> None:
    books = SymbolBooks(SYMBOL)
    for seq, event in enumerate(events):
        books.apply(event)
        books.consolidated(seq)


def publishing(events: list[BookEvent], venue: str | None, every: int) -> dict[str, Any]:
    """Publish the book after each event (one in ``every``); rate and JSON bytes per delta."""
    books = SymbolBooks(SYMBOL)
    views = []
    for seq, event in enumerate(events):
        books.apply(event)
        if seq % every == 0:
            if venue is None:
                views.append(consolidated_view(books.consolidated(seq)))
            elif venue in books.venues:
                views.append(venue_view(SYMBOL, venue, books.venues[venue], 50))
    messages: list[dict[str, Any]] = []

    def publish_all() -> None:
        publisher = BookPublisher(50)
        messages[:] = [m for m in map(publisher.publish, views) if m is not None]

    result = rate(len(views), publish_all)
    sizes = [
        len(json.dumps(m, separators=(",", ":"))) for m in messages if m["action"] == DELTA.lower()
    ]
    snapshot = next(m for m in messages if m["action"] == "snapshot")
    return {
        **result,
        "books": len(views),
        "messages": len(messages),
        "delta_json_bytes_mean": round(statistics.fmean(sizes)) if sizes else None,
        "delta_json_bytes_median": round(statistics.median(sizes)) if sizes else None,
        "delta_levels_mean": round(
            statistics.fmean(
                len(m["bids"]) + len(m["asks"]) for m in messages if m["action"] == "delta"
            ),
            1,
        ),
        "snapshot_json_bytes": len(json.dumps(snapshot, separators=(",", ":"))),
    }


def agent(payloads: list[tuple[int, bytes]]) -> list[ConsolidatedBook]:
    """The books agent's rule on (Kafka time, Avro bytes): the consolidated books made."""
    slots = BookSlots(slot_us=250_000, depth=50, freshness_us=2_000_000, future_tolerance_us=10**6)
    made = []
    for offset, (kafka_us, payload) in enumerate(payloads):
        made.extend(slots.process(offset, kafka_us, decode(payload, BookEvent)))
    return made


def gateway(books: list[ConsolidatedBook]) -> dict[str, Any]:
    """Each book into a BookStore, collected by one subscription at depth 50."""
    items: list[str] = []

    def run() -> None:
        store = BookStore()
        subscription = Subscription(StreamType.ORDERBOOK, [SYMBOL], 100, depth=50)
        items.clear()
        for book in books:
            store.update(book)
            items.extend(store.collect(subscription))

    result = rate(len(books), run)
    deltas = [len(item) for item in items if '"action":"delta"' in item]
    return {
        **result,
        "books": len(books),
        "delta_json_bytes_mean": round(statistics.fmean(deltas)) if deltas else None,
        "snapshot_json_bytes": len(items[0]),
    }


def allocated(build: Callable[[], object]) -> int:
    """Bytes still allocated by what ``build`` returns."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def memory(events: list[BookEvent]) -> dict[str, int]:
    first = next(e for e in events if e.kind == SNAPSHOT)
    deep = BookEvent(
        SYMBOL,
        "ccxt:okx",
        SNAPSHOT,
        0,
        0,
        [[f"{60_000 - i / 10:.1f}", "0.25"] for i in range(400)],
        [[f"{60_001 + i / 10:.1f}", "0.25"] for i in range(400)],
        last_update_id=1,
        depth=400,
    )

    def venue_book(event: BookEvent) -> VenueBook:
        book = VenueBook(rules_for(event.provider) if event.depth else DEFAULT_RULES)
        book.apply(event)
        return book

    return {
        "venue_book_depth_50": allocated(lambda: venue_book(first)),
        "bare_dicts_depth_50": allocated(
            lambda: (dict(map(tuple, first.bids)), dict(map(tuple, first.asks)))
        ),
        "okx_window_400": allocated(lambda: venue_book(deep)),
    }


def measure(count: int) -> dict[str, Any]:
    """Every figure of the module docstring, in one run."""
    events = synthetic_events(count)
    deltas = [e for e in events if e.kind == DELTA]
    books = SymbolBooks(SYMBOL)
    for event in events:
        books.apply(event)
    payloads = [(event.ts_ingest, encode(event)) for event in events]
    made = agent(payloads)
    return {
        **run_facts(),
        "events": len(events),
        "delta_levels_mean": round(statistics.fmean(len(e.bids) + len(e.asks) for e in deltas), 1),
        "bare": rate(len(events), lambda: bare(events)),
        "venue_books": rate(len(events), lambda: venue_books(events)),
        "consolidated": rate(len(events), lambda: consolidated(events)),
        "publish_consolidated": publishing(events, None, 1),
        "publish_consolidated_100ms": publishing(events, None, 3),
        "publish_venue": publishing(events, "synthetic:alpha", 1),
        "decode": rate(len(payloads), lambda: [decode(p, BookEvent) for _, p in payloads]),
        "agent": {**rate(len(payloads), lambda: agent(payloads)), "books_out": len(made)},
        "gateway": gateway(made),
        "avro_bytes": {
            "delta_event_mean": round(statistics.fmean(len(encode(e)) for e in deltas)),
            "consolidated_book": len(encode(books.consolidated(len(events)))),
        },
        "memory_bytes": memory(events),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 000 events instead of 30 000")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    count = args.events or (3_000 if args.quick else 30_000)
    result = measure(count)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
